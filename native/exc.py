"""Exceptions of storeedge.native: one base class (a :class:`storeedge.exc.StoreedgeError`),
each also a matching built-in."""
from storeedge.exc import EX_DATAERR, EX_UNAVAILABLE, StoreedgeError


class NativeError(StoreedgeError):
    """Base class of every storeedge.native error."""


class NativeBackendError(NativeError, ImportError, exit_code=EX_UNAVAILABLE):
    """A compiled kernel could not be loaded."""


class NativeInputError(NativeError, ValueError, exit_code=EX_DATAERR):
    """An input array has the wrong dtype, shape, layout or value range."""


class GS1Error(NativeInputError):
    """A code's content is not valid GS1 (bad check digit, unknown AI, wrong length...)."""
