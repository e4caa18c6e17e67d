"""Exceptions of storeedge.firmware.gateway."""
from storeedge.exc import StoreedgeError


class GatewayError(StoreedgeError, RuntimeError):
    """Base class of gateway errors."""
