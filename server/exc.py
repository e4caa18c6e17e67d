"""Exceptions of storeedge.server."""
from storeedge.exc import EX_CONFIG, EX_UNAVAILABLE, StoreedgeError


class StoreServerError(StoreedgeError, RuntimeError):
    """Base class of store-server errors."""


class StoreDatabaseError(StoreServerError):
    """The store database cannot be opened or written."""

    exit_code = EX_UNAVAILABLE


class SecurityConfigError(StoreServerError, ValueError):
    """The store server's security settings are missing (no seal key and not insecure)."""

    exit_code = EX_CONFIG
