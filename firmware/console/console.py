"""Wiring: a serial port, a session and the config workflow, run until stopped.

:func:`build_console` assembles the parts from a config file, a service and a device adapter;
:meth:`Console.run` reads the port (pyserial, any URL), feeds the session and runs its timers.
The loop polls the port with a short read timeout, so timers (idle logout, automatic rollback)
fire within ``poll_s`` even when nobody types.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from storeedge.drivers.clock import Clock
from storeedge.exc import StoreedgeError
from storeedge.firmware.console.auth import Authenticator, LockoutPolicy
from storeedge.firmware.console.exc import EchoingPort
from storeedge.firmware.console.commands import EventService, ShellContext
from storeedge.firmware.console.manager import ConfigManager
from storeedge.firmware.console.schema import Schema
from storeedge.firmware.console.secret import Logins, ScryptHash
from storeedge.firmware.console.session import Session, SessionSettings
from storeedge.firmware.console.store import ConfigStore
from storeedge.firmware.console.targets import Target

log = logging.getLogger(__name__)
WRITE_TIMEOUT_S = 5.0          # a port that takes no output (flow control stuck) fails, not hangs
BANNER = b"storeedge console - "   # the login banner: heard back means the line echoes
SELF_ECHOING = ("loop://",)


def refuse_self_echoing(url: str) -> None:
    """Raise :class:`EchoingPort` for a URL that echoes everything back (``loop://``)."""
    if url.strip().lower().startswith(SELF_ECHOING):
        raise EchoingPort(url)


@dataclass(frozen=True)
class ConsoleParts:
    """What :func:`build_console` needs.

    Attributes:
        config_path: the device's live YAML config file.
        target: the device adapter (its ``config_class`` validates edits).
        service: the DeviceService (or anything with emit/status/recent_events).
        clock: time source.
        secret: the shared secret's scrypt hash, or the per-technician logins.
        port_name: the port URL, for events and the prompt banner.
    """

    config_path: str
    target: Target
    service: EventService
    clock: Clock
    secret: ScryptHash | Logins
    port_name: str


def safe_emitter(service: EventService) -> Callable[[Any], None]:
    """``service.emit`` that logs instead of raising: a full outbox must not lock the
    technician out of the console that can fix it."""
    def emit(body: Any) -> None:
        try:
            service.emit(body)
        except (StoreedgeError, OSError) as exc:
            log.error("console event %s not recorded: %s", type(body).__name__, exc)
    return emit


def build_console(parts: ConsoleParts, *, settings: SessionSettings = SessionSettings(),
                  policy: LockoutPolicy = LockoutPolicy()) -> "Console":
    """Open the versioned store and assemble the session context (port not opened here)."""
    emit = safe_emitter(parts.service)
    store = ConfigStore(parts.config_path, clock_time=parts.clock.time)
    manager = ConfigManager(store, Schema(parts.target.config_class), parts.clock, emit,
                            on_commit=parts.target.on_commit)
    ctx = ShellContext(manager, parts.target, parts.service, parts.clock, parts.port_name, emit)
    auth = Authenticator(parts.secret, parts.clock, policy)
    return Console(ctx, auth, settings)


class Console:
    """One console: a context and an authenticator; sessions are made per port."""

    def __init__(self, ctx: ShellContext, auth: Authenticator, settings: SessionSettings):
        self.ctx, self.auth, self.settings = ctx, auth, settings

    def session(self, write: Callable[[bytes], Any]) -> Session:
        """A new session writing to ``write``."""
        return Session(self.ctx, self.auth, write, self.settings)

    def run(self, port, stop: threading.Event, *, poll_s: float = 0.2, out=None) -> None:
        """Serve ``port`` (an open pyserial port) until ``stop`` is set.

        Args:
            port: pyserial port; its read timeout is set to ``poll_s`` seconds.
            stop: set it to end the loop (SIGTERM handler, tests).
            poll_s: longest wait for input before timers run, seconds.
            out: port to write to when it is not ``port`` (a ``loop://`` port hears its own
                output, so a loop test uses one loop port per direction).
        """
        port.timeout = poll_s
        (out or port).write_timeout = WRITE_TIMEOUT_S
        session = self.session((out or port).write)
        heard = b""
        try:
            while not stop.is_set():
                data = port.read(max(1, port.in_waiting or 1))
                if data:
                    heard = (heard + data)[-2 * len(BANNER):]
                    if BANNER in heard:
                        raise EchoingPort(self.ctx.port_name)
                    session.feed(data)
                session.tick()
        finally:
            session.disconnect()


def serve_port(parts: ConsoleParts, stop: threading.Event, *, baudrate: int = 115200,
               settings: SessionSettings = SessionSettings(),
               policy: LockoutPolicy = LockoutPolicy()) -> None:
    """Open ``parts.port_name`` and serve it until ``stop`` is set.

    The first open raises (a wrong URL is reported, not retried for ever).  A port that fails
    later (USB gadget unplugged, pty hung up) is reopened after 1 s, doubling up to 30 s, so
    the console comes back by itself.  This is also the entry point for an app that embeds the
    console in its own process (see :mod:`.embed`): run it in a thread.
    """
    from storeedge.drivers.serial import open_port

    refuse_self_echoing(parts.port_name)
    console = build_console(parts, settings=settings, policy=policy)
    port = open_port(parts.port_name, baudrate=baudrate)
    while port is not None:
        try:
            console.run(port, stop)
        except EchoingPort:
            log.error("console port %s echoes the console's own output: console stopped "
                      "(use a real serial line or a pty)", parts.port_name)
            raise
        except OSError as exc:          # pyserial's SerialException is an OSError
            log.error("console port %s failed: %s; reopening", parts.port_name, exc)
        finally:
            port.close()
        port = None if stop.is_set() else _reopen(parts.port_name, baudrate, stop)


def _reopen(url: str, baudrate: int, stop: threading.Event):
    """Open ``url`` again, retrying with back-off (1 s doubling to 30 s); None if stopped."""
    from storeedge.drivers.serial import open_port

    delay = 1.0
    while not stop.wait(delay):
        try:
            return open_port(url, baudrate=baudrate)
        except OSError as exc:
            log.error("console port %s: %s; retrying in %.0f s", url, exc, delay)
            delay = min(30.0, delay * 2)
    return None
