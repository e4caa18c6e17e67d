"""Model files of the checkout app (fetched by :mod:`.fetch`, not committed)."""
