"""Exceptions of storeedge.firmware.freezer: one base class, each also a matching built-in.

Config mistakes are :class:`storeedge.exc.ConfigError` (key + line).
"""
from storeedge.exc import EX_DATAERR, EX_IOERR, StoreedgeError


class FreezerError(StoreedgeError):
    """Base class of every freezer app error."""


class UnknownAlarm(FreezerError, KeyError, exit_code=EX_DATAERR):
    """No open alarm has this id (mistyped, or already closed)."""

    def __str__(self) -> str:          # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class AckError(FreezerError, ValueError, exit_code=EX_DATAERR):
    """An acknowledgement that cannot be accepted (no initials, no note, already acked)."""


class UnknownRecord(FreezerError, KeyError, exit_code=EX_DATAERR):
    """No HACCP record has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RecordFileError(FreezerError, OSError, exit_code=EX_IOERR):
    """The HACCP record log or the open-alarm file cannot be read or written (disk full)."""
