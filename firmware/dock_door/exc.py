"""Exceptions of storeedge.firmware.dock_door: one base class, each also a matching built-in.

A *denied credential* is not an exception: verification returns a :class:`Decision` with a
reason.  These exceptions are for operating errors on the door (corrupt state database, a relay
that does not follow its command); the delivery-code format's errors (credential, key file,
revocation list) are the core's, in :mod:`storeedge.exc`.
"""
from storeedge.exc import EX_IOERR, StoreedgeError


class DoorError(StoreedgeError):
    """Base class of every dock door error."""


class UnknownKeyError(DoorError, KeyError):
    """A key id that is not in the trust store."""


class StateStoreError(DoorError, OSError, exit_code=EX_IOERR):
    """The door's state database cannot be opened or written."""


class RelayFault(DoorError, RuntimeError):
    """The lock relay output does not read back the state it was commanded to."""
