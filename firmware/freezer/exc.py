"""Exceptions of storeedge.firmware.freezer: one base class, each also a matching built-in.

Config mistakes are :class:`storeedge.exc.ConfigError` (key + line).
"""
from storeedge.exc import EX_DATAERR, EX_IOERR, StoreedgeError


class FreezerError(StoreedgeError):
    """Base class of every freezer app error."""


class UnknownAlarm(FreezerError, KeyError):
    """No open alarm has this id (mistyped, or already closed)."""

    exit_code = EX_DATAERR

    def __str__(self) -> str:          # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class AckError(FreezerError, ValueError):
    """An acknowledgement that cannot be accepted (no initials, no note, already acked)."""

    exit_code = EX_DATAERR


class UnknownRecord(FreezerError, KeyError):
    """No HACCP record has this id."""

    exit_code = EX_DATAERR

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RecordFileError(FreezerError, OSError):
    """The HACCP record log or the open-alarm file cannot be read or written (disk full)."""

    exit_code = EX_IOERR
