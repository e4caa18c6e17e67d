"""The one exception root of storeedge, and the errors of the core package.

Every package's ``exc.py`` derives its own base class from :class:`StoreedgeError`; each class
also inherits the matching built-in (``ValueError``, ``ConnectionError`` ...), so callers may
catch either.  :attr:`StoreedgeError.exit_code` is the process exit status a command-line entry
point uses when the error ends it (``sysexits.h`` values: 78 bad config, 69 unavailable ...).
"""
from __future__ import annotations

EX_SOFTWARE = 70
"""Exit status of an unexpected internal error (sysexits ``EX_SOFTWARE``)."""
EX_CONFIG = 78
"""Exit status of a bad config file or value (sysexits ``EX_CONFIG``)."""
EX_UNAVAILABLE = 69
"""Exit status when a needed service or file is unavailable (sysexits ``EX_UNAVAILABLE``)."""
EX_DATAERR = 65
"""Exit status of bad input data (sysexits ``EX_DATAERR``)."""
EX_NOPERM = 77
"""Exit status of a refused permission (sysexits ``EX_NOPERM``)."""
EX_IOERR = 74
"""Exit status of a failed read or write of a file or device (sysexits ``EX_IOERR``)."""


class StoreedgeError(Exception):
    """Root of every storeedge error.

    Attributes:
        exit_code: the process exit status when this error ends a command (class attribute;
            a subclass may also give it as a class keyword: ``class E(Base, exit_code=78)``).
    """

    exit_code: int = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code


def exit_code_of(exc: BaseException) -> int:
    """The exit status for ``exc``: its ``exit_code`` if it is a storeedge error, else 70."""
    return exc.exit_code if isinstance(exc, StoreedgeError) else EX_SOFTWARE


class ConfigError(StoreedgeError, ValueError):
    """A config file or value is invalid.

    Attributes:
        key: dotted key of the offending setting ("" for the whole file).
        line: 1-based line in the file, when known.
        reason: what is wrong, with the allowed range where there is one.
    """

    exit_code = EX_CONFIG

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


class AppExit(StoreedgeError):
    """A command ends before running, with :attr:`exit_code`: 0 after a good
    ``--validate-config``, 1 after a bad config was reported on stderr (1, not ConfigError's
    78: the exit status of a bad config is kept as it always was).

    Not an error of the input as such (that was reported already): a command's ``main``
    catches it and returns ``exit_code_of(end)``.  Raised by
    ``storeedge.cmdline.load_app_config``.
    """

    def __init__(self, exit_code: int, message: str = ""):
        super().__init__(message or f"exit {exit_code}")
        self.exit_code = exit_code


class EventError(StoreedgeError, ValueError):
    """An event envelope or body does not match its schema."""

    exit_code = EX_DATAERR


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

    exit_code = EX_UNAVAILABLE


class CommandRefused(StoreedgeError, PermissionError):
    """A command was refused before any handler ran.

    Attributes:
        reason: one of ``storeedge.signing.Reason``'s values (``bad_signature``, ``expired``...).
        detail: a one-line explanation.
    """

    exit_code = EX_NOPERM

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class SigningKeyError(StoreedgeError, ValueError):
    """A command signing/verification key file is missing, unreadable, wrong or too open."""

    exit_code = EX_CONFIG


class AppSpecError(StoreedgeError, LookupError):
    """An app kind is unknown, declared twice, or its spec cannot be loaded."""

    exit_code = EX_CONFIG


class StoreedgeToolError(StoreedgeError):
    """Base class of the package-level tools' errors (store PKI, broker configs, seals)."""


class PKIError(StoreedgeToolError, ValueError):
    """A store PKI operation cannot be done (bad id/kind, already enrolled, missing CA...)."""


class PKINotFound(PKIError, FileNotFoundError):
    """The PKI folder or an enrolment does not exist."""

    exit_code = EX_UNAVAILABLE


class BrokerConfError(StoreedgeToolError, ValueError):
    """A Mosquitto config cannot be generated from the enrolment list."""


class SealKeyError(StoreedgeToolError, ValueError):
    """An end-to-end event key (or the store's master secret) is missing, unreadable or bad."""


# The delivery-code protocol between the store (issuer) and the dock door (verifier).

class CredentialFormatError(StoreedgeError, ValueError, exit_code=EX_DATAERR):
    """A QR text or payload that is not a well-formed credential; ``.reason`` names the denial."""

    def __init__(self, message: str, reason: str = "malformed"):
        super().__init__(message)
        self.reason = reason


class KeyFileError(StoreedgeError, ValueError, exit_code=EX_CONFIG):
    """A key file that cannot be read or has the wrong format."""


class RevocationListError(StoreedgeError, ValueError, exit_code=EX_DATAERR):
    """A revocation list that is malformed, badly signed, for another store, or older."""
