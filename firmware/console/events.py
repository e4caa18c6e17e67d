"""Event types the technician console emits (listed in storeedge.events.CORE_EVENT_MODULES).

Secrets never appear in a body: config values of ``secret=True`` settings are masked as
``"********"`` before the event is built, and the technician secret is never in any event.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from storeedge.events import Prio, event_type


def _doc(text: str, unit: str | None = None) -> dict:
    return {"doc": text, "unit": unit} if unit else {"doc": text}


@event_type("console.login", prio=Prio.OPERATIONAL)
@dataclass
class ConsoleLogin:
    """A technician logged in on the serial console."""

    port: str = field(metadata=_doc("serial port URL of the console"))


@event_type("console.login_failed", prio=Prio.SAFETY)
@dataclass
class ConsoleLoginFailed:
    """A wrong technician secret was typed (or a login was refused during a lockout)."""

    port: str = field(metadata=_doc("serial port URL of the console"))
    failures: int = field(metadata=_doc("consecutive failures, including this one"))
    locked_for_s: float = field(metadata=_doc("lockout now in force (0 = none)", "s"))
    refused: bool = field(metadata=_doc("true: attempt made during a lockout, not checked"))


@event_type("console.logout", prio=Prio.OPERATIONAL)
@dataclass
class ConsoleLogout:
    """A console session ended."""

    port: str = field(metadata=_doc("serial port URL of the console"))
    reason: str = field(metadata=_doc("logout, ctrl-d, idle timeout or disconnect"))


@dataclass
class ConfigChange:
    """One changed setting; values rendered as text, secrets as ********."""

    key: str = field(metadata=_doc("dotted config key"))
    old: str | None = field(metadata=_doc("value before (null: not set)"))
    new: str | None = field(metadata=_doc("value after (null: not set)"))


@event_type("console.commit", prio=Prio.OPERATIONAL)
@dataclass
class ConfigCommitted:
    """A config version was committed (by a technician or by an automatic rollback)."""

    version: int = field(metadata=_doc("new version number"))
    previous: int = field(metadata=_doc("version it replaced"))
    by: str = field(metadata=_doc("console, console:auto-rollback, ..."))
    note: str = field(metadata=_doc("commit note"))
    confirm_within_s: float | None = field(
        metadata=_doc("commit confirmed: rolls back unless confirmed within this", "s"))
    changes: list[ConfigChange] = field(metadata=_doc("the diff, secrets masked"))


@event_type("console.confirm", prio=Prio.OPERATIONAL)
@dataclass
class ConfigConfirmed:
    """A `commit confirmed` was confirmed and is now permanent."""

    version: int = field(metadata=_doc("confirmed version"))


@event_type("console.selftest", prio=Prio.OPERATIONAL)
@dataclass
class SelfTestRun:
    """A hardware self-test was run from the console."""

    test: str = field(metadata=_doc("relay, sensors, camera or scanner"))
    passed: bool = field(metadata=_doc("overall result"))
    detail: str = field(metadata=_doc("one-line summary"))
