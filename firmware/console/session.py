"""A console session on one serial line: login, command loop, idle timeout, logout.

:class:`Session` is fed raw bytes (:meth:`Session.feed`) and writes its output through a
``write`` callable, so tests can drive it directly or through a real pty / ``loop://`` port.
:meth:`Session.tick` must be called regularly (the port loop does it on every read timeout):
it ends idle sessions and runs the config manager's automatic rollback.

States: ``LOGIN`` (password prompt, no echo) -> ``SHELL`` -> back to ``LOGIN`` on ``logout``,
Ctrl-D or idle timeout, like a getty on a serial line.  All output is ASCII, CR LF line ends,
wrapped to 80 columns.
"""
from __future__ import annotations

import enum
import logging
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

from storeedge.exc import StoreedgeError
from storeedge.firmware.console.auth import Authenticator, Outcome
from storeedge.firmware.console.commands import Reply, ShellContext, available, build_table
from storeedge.firmware.console.complete import Completer
from storeedge.firmware.console.events import ConsoleLogin, ConsoleLoginFailed, ConsoleLogout
from storeedge.firmware.console.exc import ConsoleError
from storeedge.firmware.console.lineedit import LineEditor, LineKind, LineItem
from storeedge.firmware.console.parser import match, tokenize

log = logging.getLogger(__name__)
WIDTH = 80


class State(enum.Enum):
    LOGIN = "login"
    SHELL = "shell"


@dataclass(frozen=True)
class SessionSettings:
    """Session settings.

    Attributes:
        idle_timeout_s: log out after this many seconds without a key press.
        prompt_name: shown in the prompt, e.g. the device id.
        max_line: longest accepted command line, characters.
    """

    idle_timeout_s: float = 600.0
    prompt_name: str = "storeedge"
    max_line: int = 256


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """``line`` as ASCII, hard-wrapped to ``width`` columns (continuations indented 4)."""
    text = line.encode("ascii", "replace").decode("ascii")
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in text)
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, subsequent_indent="    ", break_long_words=True,
                         break_on_hyphens=False) or [""]


class Session:
    """One serial-line session.

    Args:
        ctx: what commands act on.
        auth: the technician-secret checker (shared by all sessions of the process).
        write: called with bytes for the terminal.
        settings: see :class:`SessionSettings`.
    """

    def __init__(self, ctx: ShellContext, auth: Authenticator, write: Callable[[bytes], Any],
                 settings: SessionSettings = SessionSettings()):
        self.ctx, self.auth, self.settings = ctx, auth, settings
        self._write = write
        self.table = build_table(self._help)
        self.shown = [s for s in self.table if available(s, ctx.target)]
        completer = Completer(self.shown, ctx.manager.schema, self._keys)
        self.editor = LineEditor(write, max_len=settings.max_line, completer=completer)
        self.state = State.LOGIN
        self._last_input = ctx.clock.monotonic()
        self._reported_lock: float | None = None   # lockout already reported as an event
        self._login_prompt()

    # -- output
    def say(self, *lines: str, raw: bool = False) -> None:
        """Print ``lines`` (ASCII, CR LF), wrapped to 80 columns unless ``raw`` (JSON)."""
        out = [w for line in lines for w in ([wrap(line, 10**6)[0]] if raw else wrap(line))]
        self._write("".join(w + "\r\n" for w in out).encode("ascii"))

    def _keys(self) -> list[str]:
        try:
            return [k for k, _ in self.ctx.manager.candidate.effective_items("")]
        except (ConsoleError, StoreedgeError):
            return []

    def _prompt(self) -> None:
        if self.state is State.SHELL:
            dirty = "*" if self.ctx.manager.candidate.dirty else ""
            prompt = f"{self.settings.prompt_name}{dirty}> ".encode("ascii", "replace")
            self.editor.prompt = prompt
            self._write(prompt)

    def _login_prompt(self) -> None:
        self.state = State.LOGIN
        self._user: str | None = None
        banner = b"\r\nstoreedge console - " + self.settings.prompt_name.encode("ascii", "replace")
        if self.auth.named:
            self.editor.reset(echo=True)
            self._write(banner + b"\r\nLogin: ")
        else:
            self.editor.reset(echo=False)
            self._write(banner + b"\r\nPassword: ")

    # -- input
    def feed(self, data: bytes) -> None:
        """Process bytes typed on the terminal."""
        if data:
            self._last_input = self.ctx.clock.monotonic()
        for item in self.editor.feed(data):
            if self.state is State.LOGIN:
                self._login_item(item)
            else:
                self._shell_item(item)

    def tick(self) -> None:
        """Run timers: automatic rollback of an unconfirmed commit, idle logout."""
        self._auto_rollback()
        idle = self.ctx.clock.monotonic() - self._last_input
        if idle < self.settings.idle_timeout_s:
            return
        if self.state is State.SHELL:
            self.say("", f"idle for {self.settings.idle_timeout_s:g} s: logged out")
            self._logout("idle timeout")
        elif self.editor.pending:
            self.editor.reset(echo=False)       # forget a half-typed secret

    def _auto_rollback(self) -> None:
        try:
            result = self.ctx.manager.tick()
        except (ConsoleError, StoreedgeError, OSError) as exc:
            log.error("automatic rollback failed: %s", exc)
            self.say("", f"*** automatic rollback FAILED: {exc}")
            return
        if result is not None and self.state is State.SHELL:
            self.say("", f"*** commit not confirmed in time: rolled back to the previous "
                         f"config (now version {result.version}); candidate edits discarded")
            self._prompt()

    def _login_item(self, item: LineItem) -> None:
        if item.kind is not LineKind.LINE or not item.text:
            self._login_prompt()
            return
        if self.auth.named and self._user is None:
            self._user = item.text.strip().lower()
            self.editor.reset(echo=False)
            self._write(b"Password: ")
            return
        result = self.auth.attempt(item.text, self._user or "")
        port = self.ctx.port_name
        if result.outcome is Outcome.OK:
            self.ctx.user = self._user or "console"
            self.ctx.emit(ConsoleLogin(port))
            self.state = State.SHELL
            self.editor.reset(echo=True)
            who = f" as {self.ctx.user}" if self.auth.named else ""
            self.say(f"logged in{who}. 'help' lists commands; Ctrl-C cancels a line, "
                     f"Ctrl-D logs out.")
            self._prompt()
            return
        refused = result.outcome is Outcome.REFUSED
        if not refused or self._reported_lock != self.auth.locked_until:
            # one event per lockout for refused attempts: typing into a lockout cannot flood
            # the outbox with priority-0 events
            self._reported_lock = self.auth.locked_until if refused else None
            self.ctx.emit(ConsoleLoginFailed(port, result.failures, result.locked_for_s,
                                             refused))
        if refused:
            self.say(f"locked out: try again in {result.locked_for_s:.0f} s")
        elif result.outcome is Outcome.LOCKED:
            self.say(f"wrong secret. Too many failures: locked out for "
                     f"{result.locked_for_s:.0f} s")
        else:
            self.say("wrong login or secret" if self.auth.named else "wrong secret")
        self._login_prompt()

    def _shell_item(self, item: LineItem) -> None:
        if item.kind is LineKind.EOF:
            self._logout("ctrl-d")
            return
        if item.kind is LineKind.REJECTED:
            self.say(f"error: {item.text}")
        elif item.kind is LineKind.LINE and item.text.strip():
            self._run(item.text)
        if self.state is State.SHELL:
            self._prompt()

    def _run(self, line: str) -> None:
        try:
            parsed = match(tokenize(line), self.table)
            reply: Reply = parsed.spec.handler(self.ctx, parsed.args)
        except (ConsoleError, StoreedgeError, OSError) as exc:
            self.say(f"error: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a bug in one command must not end the session
            log.exception("console command %r failed", line)
            self.say(f"error: internal error in this command: {type(exc).__name__}: {exc}")
            return
        self.say(*reply.lines, raw=reply.raw)
        if reply.logout:
            self._logout("logout")

    def _logout(self, reason: str) -> None:
        if self.ctx.manager.candidate.dirty:
            self.say("uncommitted candidate changes discarded")
        self.ctx.manager.candidate.reset(self.ctx.manager.store.active())
        self.ctx.emit(ConsoleLogout(self.ctx.port_name, reason))
        self._login_prompt()

    def disconnect(self) -> None:
        """The line went away (port closed): end a logged-in session."""
        if self.state is State.SHELL:
            self._logout("disconnect")

    # -- help
    def _help(self, ctx: ShellContext, args: list[str]) -> Reply:
        if args:
            spec = match(args, self.table, check_args=False).spec
            return Reply([f"{spec.synopsis}", f"    {spec.help}"])
        width = max(len(s.synopsis) for s in self.shown) + 2
        lines = [f"{s.synopsis:<{width}}{s.help}" for s in self.shown]
        lines.append("Words may be shortened while unambiguous: 'sh co' = 'show config'.")
        lines.append("Tab completes a word, '?' lists what may come next, Up/Down recall.")
        return Reply(lines)
