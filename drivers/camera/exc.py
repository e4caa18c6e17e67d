"""Exceptions of storeedge.drivers.camera (all are storeedge.drivers.exc.DriverError)."""
from storeedge.drivers.exc import BackendUnavailable, DeviceIOError, DriverError
from storeedge.exc import EX_DATAERR


class CameraError(DriverError):
    """Base class of camera errors."""


class CameraUnavailable(CameraError, BackendUnavailable):
    """The camera backend could not be loaded or opened; the message says why."""


class CameraIOError(CameraError, DeviceIOError):
    """Capturing from an open camera failed."""


class ReplayError(CameraError, ValueError, exit_code=EX_DATAERR):
    """A replay source (image folder or recording) is empty or malformed."""
