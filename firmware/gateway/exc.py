"""Exceptions of storeedge.firmware.gateway."""
from storeedge.firmware.common.exc import StoreedgeError


class GatewayError(StoreedgeError, RuntimeError):
    """Base class of gateway errors."""
