"""Exceptions of storeedge.server."""
from storeedge.exc import EX_CONFIG, EX_UNAVAILABLE, StoreedgeError


class StoreServerError(StoreedgeError, RuntimeError):
    """Base class of store-server errors."""


class StoreDatabaseError(StoreServerError, exit_code=EX_UNAVAILABLE):
    """The store database cannot be opened or written."""


class SecurityConfigError(StoreServerError, ValueError, exit_code=EX_CONFIG):
    """The store server's security settings are missing (no seal key and not insecure)."""
