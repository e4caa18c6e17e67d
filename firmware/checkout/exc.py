"""Exceptions of storeedge.firmware.checkout: one base class, each also a built-in."""


class CheckoutError(Exception):
    """Base class of every checkout app error."""


class ModelError(CheckoutError, RuntimeError):
    """The detector model is missing, unreadable or has unexpected tensors."""


class PosLineError(CheckoutError, ValueError):
    """A POS line could not be parsed (garbage, bad check digit...)."""


class PipelineError(CheckoutError, RuntimeError):
    """The frame pipeline was misused (e.g. frames out of order)."""
