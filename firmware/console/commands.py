"""The console's commands: one handler each, returning the lines to print.

Handlers take ``(ctx: ShellContext, args: list[str])`` and return a :class:`Reply`; problems
are raised as :class:`~storeedge.firmware.console.exc.ConsoleError` subclasses (or
``ConfigError``/``OSError``) and printed as ``error: ...`` by the session, which stays usable.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from storeedge.drivers.clock import Clock
from storeedge.firmware.console.events import SelfTestRun
from storeedge.firmware.console.exc import CommandError
from storeedge.firmware.console.manager import MAX_CONFIRM_MINUTES, CommitResult, ConfigManager
from storeedge.firmware.console.parser import CommandSpec
from storeedge.firmware.console.schema import allowed_text
from storeedge.firmware.console.targets import TEST_NAMES, Target


class EventService(Protocol):
    """What the console needs from ``DeviceService``."""

    def emit(self, body: Any, ts: float | None = None) -> Any: ...
    def status(self) -> Any: ...
    def recent_events(self, n: int = 20, type: str | None = None) -> list: ...  # noqa: A002


@dataclass(frozen=True)
class Reply:
    """Lines to print, and whether the session ends."""

    lines: list[str] = field(default_factory=list)
    logout: bool = False
    raw: bool = False       # print lines whole (JSON a terminal can copy), never hard-wrapped


@dataclass
class ShellContext:
    """Everything a command may touch."""

    manager: ConfigManager
    target: Target
    service: EventService
    clock: Clock
    port_name: str
    emit: Callable[[Any], None]
    network: Callable[[], list[str]] | None = None
    user: str = "console"          # who is logged in: commits are recorded by this name


def _changes_lines(changes) -> list[str]:
    if not changes:
        return ["(no changes)"]
    out = []
    for c in changes:
        if c.old is None:
            out.append(f"+ {c.key} = {c.new}")
        elif c.new is None:
            out.append(f"- {c.key} (was {c.old})")
        else:
            out.append(f"~ {c.key}: {c.old} -> {c.new}")
    return out


def _fields(obj: Any) -> list[tuple[str, Any]]:
    if dataclasses.is_dataclass(obj):
        return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    if hasattr(obj, "_asdict"):
        return list(obj._asdict().items())
    if isinstance(obj, dict):
        return list(obj.items())
    return [("state", obj)]


def _inline(value: Any) -> str:
    """A nested record as ``a=1 b=2`` on one line (wrapped by the session at 80 columns)."""
    if dataclasses.is_dataclass(value) or hasattr(value, "_asdict"):
        return " ".join(f"{k}={v}" for k, v in _fields(value))
    return str(value)


def cmd_status(ctx: ShellContext, args: list[str]) -> Reply:
    values = ctx.manager.schema.effective(ctx.manager.store.active())
    lines = [f"device: {values.get('device.id')} ({ctx.target.kind}) "
             f"store {values.get('device.store')}",
             f"config: version {ctx.manager.store.active_number()}" + _pending_text(ctx)]
    lines += [f"service {name}: {_inline(value)}" for name, value in _fields(ctx.service.status())]
    lines += [f"{s.name}: {s.value}" for s in ctx.target.status()]
    return Reply(lines)


def _pending_text(ctx: ShellContext) -> str:
    left = ctx.manager.seconds_to_rollback()
    if left is None:
        return ""
    return f" (UNCONFIRMED: rolls back in {left:.0f} s unless 'confirm')"


def cmd_show_config(ctx: ShellContext, args: list[str]) -> Reply:
    items = ctx.manager.candidate.effective_items(args[0] if args else "")
    lines = [f"{k} = {v}" for k, v in items]
    if args and len(items) == 1 and items[0][0] == args[0]:
        lines += _key_help(ctx, args[0])
    if ctx.manager.candidate.dirty:
        lines.append("(candidate has uncommitted changes: see 'diff')")
    return Reply(lines or ["(nothing under that key)"])


def _key_help(ctx: ShellContext, key: str) -> list[str]:
    """Type, range, default and doc of one setting (for ``show config KEY``)."""
    info = ctx.manager.schema.resolve(key)
    default = getattr(info.spec, "doc", "")
    lines = [f"    allowed: {allowed_text(info)}"] if allowed_text(info) else []
    return lines + ([f"    {default}"] if default else [])


def cmd_set(ctx: ShellContext, args: list[str]) -> Reply:
    key, text = args[0], " ".join(args[1:])
    ctx.manager.candidate.set(key, text)
    shown = ctx.manager.schema.show(key, ctx.manager.schema.effective(
        ctx.manager.candidate.data).get(key))
    return Reply([f"candidate: {key} = {shown} (not live until 'commit')"])


def cmd_unset(ctx: ShellContext, args: list[str]) -> Reply:
    if not ctx.manager.candidate.unset(args[0]):
        return Reply([f"{args[0]} is not set in the config file; it already has its default"])
    return Reply([f"candidate: {args[0]} unset, its default applies (not live until 'commit')"])


def cmd_diff(ctx: ShellContext, args: list[str]) -> Reply:
    changes = ctx.manager.candidate.changes()
    extra = ctx.target.reload_lines(ctx.manager.candidate.data) if changes else []
    return Reply(_changes_lines(changes) + extra)


def _commit(ctx: ShellContext, minutes: int | None) -> Reply:
    """Commit; the app applies it live (or restarts), as announced before it is applied."""
    manager = ctx.manager
    before = ctx.target.reload_lines(manager.candidate.data) if manager.candidate.dirty else []
    result = manager.commit(confirm_minutes=minutes, by=ctx.user)
    return Reply(_commit_lines(result) + before)


def _commit_lines(result: CommitResult) -> list[str]:
    lines = _changes_lines(result.changes) if result.changes else []
    if result.confirm_by_s is not None:
        lines.append(f"committed version {result.version}; rolls back to version "
                     f"{result.previous} in {result.confirm_by_s / 60:g} min unless 'confirm'")
    elif result.changes:
        lines.append(f"committed version {result.version} (was {result.previous})")
    else:
        lines.append(f"version {result.version} confirmed; it stays")
    return lines


def cmd_commit(ctx: ShellContext, args: list[str]) -> Reply:
    return _commit(ctx, None)


def cmd_commit_confirmed(ctx: ShellContext, args: list[str]) -> Reply:
    try:
        minutes = int(args[0])
    except ValueError:
        raise CommandError(f"commit confirmed: MINUTES must be a whole number "
                           f"1..{MAX_CONFIRM_MINUTES}, got {args[0]!r}") from None
    return _commit(ctx, minutes)


def cmd_confirm(ctx: ShellContext, args: list[str]) -> Reply:
    return Reply(_commit_lines(ctx.manager.confirm()))


def _int_arg(text: str, name: str, lo: int, hi: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise CommandError(f"{name} must be a whole number {lo}..{hi}, got {text!r}") from None
    if not lo <= value <= hi:
        raise CommandError(f"{name} must be {lo}..{hi}, got {value}")
    return value


def cmd_rollback(ctx: ShellContext, args: list[str]) -> Reply:
    count = len(ctx.manager.store.numbers())
    back = _int_arg(args[0], "rollback N", 0, count - 1) if args else 0
    changes = ctx.manager.load_rollback(back)
    if back == 0:
        return Reply(["candidate reset to the live config (edits discarded)"])
    return Reply(_changes_lines(changes) +
                 [f"loaded rollback {back} into the candidate; 'commit' to apply it"])


def cmd_history(ctx: ShellContext, args: list[str]) -> Reply:
    lines = ["  N  version  time (UTC)            by", "  -  -------  --------------------  --"]
    for back, info in enumerate(ctx.manager.history()):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info.time))
        note = f"  {info.note}" if info.note else ""
        lines.append(f"{back:>3}  {info.number:>7}  {stamp}   {info.by}{note}")
    return Reply(lines)


def cmd_events(ctx: ShellContext, args: list[str]) -> Reply:
    count, kind = 10, None
    for arg in args:
        if arg.isdigit():
            count = _int_arg(arg, "events N", 1, 500)
        else:
            kind = arg
    events = ctx.service.recent_events(n=count, type=kind)
    if not events:
        return Reply(["(no events" + (f" of type {kind})" if kind else ")")])
    lines = []
    for env in events:
        body = json.dumps(env.body, separators=(",", ":"), sort_keys=True)
        lines.append(f"{env.seq:>6} {env.ts[11:19]} {env.type} {body}")
    return Reply(lines, raw=True)


def cmd_test(name: str) -> Callable[[ShellContext, list[str]], Reply]:
    def run(ctx: ShellContext, args: list[str]) -> Reply:
        ctx.target.check_test(name)
        result = ctx.target.self_test(name)
        ctx.emit(SelfTestRun(name, result.passed, result.summary))
        return Reply(result.lines)
    return run


def cmd_ack(ctx: ShellContext, args: list[str]) -> Reply:
    return Reply([ctx.target.ack(args[0], " ".join(args[1:]))])


def cmd_reset_lockout(ctx: ShellContext, args: list[str]) -> Reply:
    return Reply([ctx.target.reset_lockout(" ".join(args))])


def cmd_network(ctx: ShellContext, args: list[str]) -> Reply:
    lines = (ctx.network or network_lines)()
    values = ctx.manager.schema.effective(ctx.manager.store.active())
    lines.append(f"broker: {values.get('link.url')}")
    link = dict(_fields(ctx.service.status())).get("link", None)
    if link is not None:
        lines.append(f"link: {link}")
    return Reply(lines)


def network_lines() -> list[str]:
    """Interface addresses via ``ip -brief address`` (iproute2, present on Pi OS)."""
    try:
        out = subprocess.run(["ip", "-brief", "address"], capture_output=True, text=True,
                             timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"addresses: cannot run 'ip -brief address': {exc}"]
    return ["interface        state    addresses"] + [
        "{:<16} {:<8} {}".format(*(line.split(None, 2) + ["", ""])[:3])
        for line in out.splitlines() if line.strip()]


def cmd_logout(ctx: ShellContext, args: list[str]) -> Reply:
    return Reply(["bye"], logout=True)


KIND_ONLY = {("ack",): "freezer", ("reset", "lockout"): "dock_door"}


def available(spec: CommandSpec, target: Target) -> bool:
    """True if this device kind can run ``spec`` (``help``, Tab and ``?`` show only these;
    the others still answer with a clear 'not available on a <kind>' when typed)."""
    if spec.words[0] == "test":
        return spec.words[1] in target.tests
    kind = KIND_ONLY.get(spec.words)
    return kind is None or target.kind == kind


def build_table(help_handler: Callable[[ShellContext, list[str]], Reply]) -> list[CommandSpec]:
    """The command table (order = order in ``help``)."""
    S = CommandSpec
    table = [
        S(("help",), "[COMMAND]", "list commands, or explain one", help_handler, 0, None),
        S(("status",), "", "app state, config version, outbox, link, sensors", cmd_status),
        S(("show", "config"), "[KEY]", "show the candidate config (or one key/section)",
          cmd_show_config, 0, 1),
        S(("set",), "KEY VALUE", "change KEY in the candidate config", cmd_set, 2, None),
        S(("unset",), "KEY", "put KEY back to its default in the candidate", cmd_unset, 1, 1),
        S(("diff",), "", "show candidate changes against the live config", cmd_diff),
        S(("commit",), "", "make the candidate live (new version)", cmd_commit),
        S(("commit", "confirmed"), "MINUTES",
          "commit, roll back after MINUTES unless 'confirm'", cmd_commit_confirmed, 1, 1),
        S(("confirm",), "", "keep a 'commit confirmed' for good", cmd_confirm),
        S(("rollback",), "[N]", "load the config N commits back into the candidate",
          cmd_rollback, 0, 1),
        S(("history",), "", "list config versions (N for rollback)", cmd_history),
        S(("events",), "[N] [TYPE]", "last N events (default 10), optionally one type",
          cmd_events, 0, 2),
    ]
    table += [S(("test", name), "", f"{name} self-test", cmd_test(name)) for name in TEST_NAMES]
    table += [
        S(("ack",), "ALARM NOTE", "acknowledge a freezer alarm with a note", cmd_ack, 2, None),
        S(("reset", "lockout"), "[NOTE]", "clear a dock door's lockout (note: why)",
          cmd_reset_lockout, 0, None),
        S(("network",), "", "addresses and the broker link", cmd_network),
        S(("logout",), "", "end the session (also Ctrl-D)", cmd_logout),
    ]
    return table
