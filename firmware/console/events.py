"""Event types the technician console emits (listed in storeedge.events.CORE_EVENT_MODULES).

Secrets never appear in a body: config values of ``secret=True`` settings are masked as
``"********"`` before the event is built, and the technician secret is never in any event.
"""
from __future__ import annotations

from dataclasses import dataclass

from storeedge.events import Prio, doc_field, event_type


@event_type("console.login", prio=Prio.OPERATIONAL)
class ConsoleLogin:
    """A technician logged in on the serial console."""

    port: str = doc_field("serial port URL of the console")


@event_type("console.login_failed", prio=Prio.SAFETY)
class ConsoleLoginFailed:
    """A wrong technician secret was typed (or a login was refused during a lockout)."""

    port: str = doc_field("serial port URL of the console")
    failures: int = doc_field("consecutive failures, including this one")
    locked_for_s: float = doc_field("lockout now in force (0 = none)", "s")
    refused: bool = doc_field("true: attempt made during a lockout, not checked")


@event_type("console.logout", prio=Prio.OPERATIONAL)
class ConsoleLogout:
    """A console session ended."""

    port: str = doc_field("serial port URL of the console")
    reason: str = doc_field("logout, ctrl-d, idle timeout or disconnect")


@dataclass
class ConfigChange:
    """One changed setting; values rendered as text, secrets as ********."""

    key: str = doc_field("dotted config key")
    old: str | None = doc_field("value before (null: not set)")
    new: str | None = doc_field("value after (null: not set)")


@event_type("console.commit", prio=Prio.OPERATIONAL)
class ConfigCommitted:
    """A config version was committed (by a technician or by an automatic rollback)."""

    version: int = doc_field("new version number")
    previous: int = doc_field("version it replaced")
    by: str = doc_field("console, console:auto-rollback, ...")
    note: str = doc_field("commit note")
    confirm_within_s: float | None = doc_field(
        "commit confirmed: rolls back unless confirmed within this", "s")
    changes: list[ConfigChange] = doc_field("the diff, secrets masked")


@event_type("console.confirm", prio=Prio.OPERATIONAL)
class ConfigConfirmed:
    """A `commit confirmed` was confirmed and is now permanent."""

    version: int = doc_field("confirmed version")


@event_type("console.selftest", prio=Prio.OPERATIONAL)
class SelfTestRun:
    """A hardware self-test was run from the console."""

    test: str = doc_field("relay, sensors, camera or scanner")
    passed: bool = doc_field("overall result")
    detail: str = doc_field("one-line summary")
