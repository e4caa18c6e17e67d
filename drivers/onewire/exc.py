"""Exceptions of storeedge.drivers.onewire: one base class, each also a matching built-in.

Bad *sensor data* (CRC failures, 85 degC power-on values, empty reads ...) is not an exception:
it comes back as a :class:`~storeedge.drivers.onewire.parser.Sample` whose ``fault`` says what
was wrong, because a freezer monitor must keep sampling through it.  Exceptions are for misuse
and for a bus that cannot be used at all.
"""
from storeedge.drivers.exc import DeviceIOError, DriverError
from storeedge.exc import EX_DATAERR, EX_UNAVAILABLE


class OneWireError(DriverError):
    """Base class of every 1-Wire driver error."""


class BusNotFound(OneWireError, FileNotFoundError, exit_code=EX_UNAVAILABLE):
    """The sysfs root has no 1-Wire bus master (is the w1-gpio overlay enabled?)."""


class BadRomId(OneWireError, ValueError, exit_code=EX_DATAERR):
    """A ROM id that is not ``ff-xxxxxxxxxxxx`` (family code, dash, 12 hex digits)."""


class ProbeIOError(OneWireError, DeviceIOError):
    """A sysfs attribute exists but could not be read or written (permissions, I/O error)."""


class ConversionTimeUnsupported(OneWireError, NotImplementedError, exit_code=EX_UNAVAILABLE):
    """The kernel has no ``conv_time`` attribute (w1_therm before Linux 5.10)."""
