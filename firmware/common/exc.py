"""Exceptions of storeedge.firmware.common: one base class, each also a matching built-in."""
from __future__ import annotations


class StoreedgeError(Exception):
    """Base class of every storeedge.firmware.common error."""


class ConfigError(StoreedgeError, ValueError):
    """A config file or value is invalid.

    Attributes:
        key: dotted key of the offending setting ("" for the whole file).
        line: 1-based line in the file, when known.
        reason: what is wrong, with the allowed range where there is one.
    """

    def __init__(self, key: str, reason: str, line: int | None = None, path: str | None = None):
        self.key, self.reason, self.line, self.path = key, reason, line, path
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.key or "<config>"
        if self.line is not None:
            where += f" (line {self.line})"
        if self.path:
            where = f"{self.path}: {where}"
        return f"{where}: {self.reason}"

    def located(self, key: str, line: int | None, path: str | None = None) -> "ConfigError":
        """A copy with the key/line/path filled in (used while walking nested sections)."""
        return ConfigError(key, self.reason, line if line is not None else self.line,
                           path or self.path)


class EventError(StoreedgeError, ValueError):
    """An event envelope or body does not match its schema."""


class BatchError(StoreedgeError, ValueError):
    """A batch frame (several envelopes in one message) is malformed."""


class OutboxError(StoreedgeError, RuntimeError):
    """The outbox could not store or read an event."""


class OutboxFull(OutboxError):
    """No room for the event even after pruning and coalescing (never a silent drop)."""


class TelemetryDropped(OutboxFull):
    """A telemetry (priority 3) event was refused because the outbox is past its soft limit."""


class EventTooLarge(OutboxError, ValueError):
    """An event's encoded envelope is larger than ``outbox.max_event_bytes``."""


class OutboxClosed(OutboxError):
    """The outbox was closed while an event was waiting to be committed."""


class LinkError(StoreedgeError, ConnectionError):
    """The MQTT link failed in a way the caller must see (bad URL, refused credentials)."""


class CommandRefused(StoreedgeError, PermissionError):
    """A command was refused before any handler ran.

    Attributes:
        reason: one of ``storeedge.signing.Reason``'s values (``bad_signature``, ``expired``...).
        detail: a one-line explanation.
    """

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class SigningKeyError(StoreedgeError, ValueError):
    """A command signing/verification key file is missing, unreadable, wrong or too open."""
