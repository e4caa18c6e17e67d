"""Exceptions of storeedge.firmware.checkout: one base class (a
:class:`storeedge.exc.StoreedgeError`), each also a built-in."""
from storeedge.exc import EX_UNAVAILABLE, StoreedgeError


class CheckoutError(StoreedgeError):
    """Base class of every checkout app error."""


class ModelError(CheckoutError, RuntimeError, exit_code=EX_UNAVAILABLE):
    """The detector model is missing, unreadable or has unexpected tensors."""
