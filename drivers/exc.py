"""Exceptions of storeedge.drivers: one base class (a :class:`storeedge.exc.StoreedgeError`),
each also a matching built-in."""
from storeedge.exc import EX_CONFIG, EX_IOERR, EX_UNAVAILABLE, StoreedgeError


class DriverError(StoreedgeError):
    """Base class of every storeedge.drivers error."""


class BackendUnavailable(DriverError, ImportError):
    """A named backend could not be loaded (its library is missing or failed); says why."""

    exit_code = EX_UNAVAILABLE


class UnknownBackend(DriverError, ValueError):
    """A backend name that is not registered."""

    exit_code = EX_CONFIG


class DeviceIOError(DriverError, OSError):
    """Reading or writing a device failed."""

    exit_code = EX_IOERR
