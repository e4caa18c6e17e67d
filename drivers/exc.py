"""Exceptions of storeedge.drivers: one base class (a :class:`storeedge.exc.StoreedgeError`),
each also a matching built-in."""
from storeedge.exc import EX_CONFIG, EX_IOERR, EX_UNAVAILABLE, StoreedgeError


class DriverError(StoreedgeError):
    """Base class of every storeedge.drivers error."""


class BackendUnavailable(DriverError, ImportError, exit_code=EX_UNAVAILABLE):
    """A named backend could not be loaded (its library is missing or failed); says why."""


class UnknownBackend(DriverError, ValueError, exit_code=EX_CONFIG):
    """A backend name that is not registered."""


class DeviceIOError(DriverError, OSError, exit_code=EX_IOERR):
    """Reading or writing a device failed."""
