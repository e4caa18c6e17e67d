"""Exceptions of storeedge.firmware.gateway.

The relay's failures are the core's (:class:`storeedge.exc.LinkError`, ``ConfigError``,
``OutboxError``); :class:`GatewayError` is the package's root for callers that catch by package.
"""
from storeedge.exc import StoreedgeError


class GatewayError(StoreedgeError, RuntimeError):
    """Base class of gateway errors."""
