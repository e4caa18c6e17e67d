"""Exceptions of storeedge.firmware.console: one base class (a
:class:`storeedge.exc.StoreedgeError`), each also a matching built-in."""
from storeedge.exc import EX_CONFIG, EX_IOERR, StoreedgeError


class ConsoleError(StoreedgeError):
    """Base class of every storeedge.firmware.console error."""


class CommandError(ConsoleError, ValueError):
    """A command line the console cannot run (unknown, ambiguous, wrong arguments)."""


class ConfigValueError(ConsoleError, ValueError, exit_code=EX_CONFIG):
    """A candidate-config edit was refused; carries the key, the reason and the allowed range."""

    def __init__(self, key: str, reason: str, allowed: str = ""):
        self.key = key
        self.reason = reason
        self.allowed = allowed
        text = f"{key}: {reason}" if key else reason
        super().__init__(f"{text} (allowed: {allowed})" if allowed else text)


class StoreError(ConsoleError, OSError, exit_code=EX_IOERR):
    """The versioned config store could not read or write a version."""


class SecretError(ConsoleError, ValueError, exit_code=EX_CONFIG):
    """The technician secret file is missing, malformed or the new secret is unacceptable."""


class TargetError(ConsoleError, RuntimeError):
    """A device adapter could not perform an action (self-test, ack, reset)."""


class EchoingPort(ConsoleError, ValueError, exit_code=EX_CONFIG):
    """The console port echoes what the console writes (``loop://``, a line with echo on):
    the console would read its own prompts as passwords."""

    def __init__(self, url: str):
        super().__init__(f"console port {url!r} echoes everything written to it (loop:// or a "
                         f"line with echo on): the console would read its own prompts as "
                         f"input; use a real serial line (/dev/ttyGS0, /dev/serial0), a pty "
                         f"or socket://")
