"""Exceptions of storeedge.firmware.dock_door: one base class, each also a matching built-in.

A *denied credential* is not an exception: verification returns a :class:`Decision` with a
reason.  These exceptions are for programming and operating errors (bad key file, corrupt
state database, a relay that does not follow its command).
"""
from storeedge.exc import EX_CONFIG, EX_DATAERR, EX_IOERR, StoreedgeError


class DoorError(StoreedgeError):
    """Base class of every dock door error."""


class CredentialFormatError(DoorError, ValueError, exit_code=EX_DATAERR):
    """A QR text or payload that is not a well-formed credential; ``.reason`` names the denial."""

    def __init__(self, message: str, reason: str = "malformed"):
        super().__init__(message)
        self.reason = reason


class KeyFileError(DoorError, ValueError, exit_code=EX_CONFIG):
    """A key file that cannot be read or has the wrong format."""


class UnknownKeyError(DoorError, KeyError):
    """A key id that is not in the trust store."""


class RevocationListError(DoorError, ValueError, exit_code=EX_DATAERR):
    """A revocation list that is malformed, badly signed, for another store, or older."""


class StateStoreError(DoorError, OSError, exit_code=EX_IOERR):
    """The door's state database cannot be opened or written."""


class RelayFault(DoorError, RuntimeError):
    """The lock relay output does not read back the state it was commanded to."""
