"""Exceptions of storeedge.firmware.freezer: one base class, each also a matching built-in.

Config mistakes are :class:`storeedge.exc.ConfigError` (key + line).
"""


class FreezerError(Exception):
    """Base class of every freezer app error."""


class UnknownAlarm(FreezerError, KeyError):
    """No open alarm has this id (mistyped, or already closed)."""

    def __str__(self) -> str:          # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class AckError(FreezerError, ValueError):
    """An acknowledgement that cannot be accepted (no initials, no note, already acked)."""


class UnknownRecord(FreezerError, KeyError):
    """No HACCP record has this id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RecordFileError(FreezerError, OSError):
    """The HACCP record log or the open-alarm file cannot be read or written (disk full)."""
