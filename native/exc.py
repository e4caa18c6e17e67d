"""Exceptions of storeedge.native: one base class, each also a matching built-in."""


class NativeError(Exception):
    """Base class of every storeedge.native error."""


class NativeBackendError(NativeError, ImportError):
    """A compiled kernel could not be loaded."""


class NativeInputError(NativeError, ValueError):
    """An input array has the wrong dtype, shape, layout or value range."""


class GS1Error(NativeInputError):
    """A code's content is not valid GS1 (bad check digit, unknown AI, wrong length...)."""
