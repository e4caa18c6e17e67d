"""Exceptions of storeedge.drivers.pos (all are storeedge.drivers.exc.DriverError)."""
from storeedge.drivers.exc import DeviceIOError, DriverError


class PosError(DriverError):
    """Base class of POS feed errors."""


class PosFeedIOError(PosError, DeviceIOError):
    """The POS feed's port or broker failed."""
