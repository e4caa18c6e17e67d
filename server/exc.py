"""Exceptions of storeedge.server."""
from storeedge.firmware.common.exc import StoreedgeError


class StoreServerError(StoreedgeError, RuntimeError):
    """Base class of store-server errors."""


class StoreDatabaseError(StoreServerError):
    """The store database cannot be opened or written."""
