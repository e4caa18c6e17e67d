"""Exceptions of storeedge.drivers: one base class, each also a matching built-in."""


class DriverError(Exception):
    """Base class of every storeedge.drivers error."""


class BackendUnavailable(DriverError, ImportError):
    """A named backend could not be loaded (its library is missing or failed); says why."""


class UnknownBackend(DriverError, ValueError):
    """A backend name that is not registered."""


class DeviceIOError(DriverError, OSError):
    """Reading or writing a device failed."""
