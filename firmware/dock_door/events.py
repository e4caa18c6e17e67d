"""Dock door event types.  Every body ends with ``chain`` (see :mod:`.audit`).

Times are epoch seconds (UTC, float); ``cred_id`` is 24 hex characters.  QR texts are never
put in events (``text_sha`` is a short hash to correlate repeated bad scans).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from storeedge.audit import ChainLink
from storeedge.events import REGISTRY, Prio, doc_field, event_type


def _chain():
    """The ``chain`` field every door body ends with (filled in by the audit chain)."""
    return doc_field("audit chain link", default=None)


@event_type("door.granted", prio=Prio.LOSS)
class DoorGranted:
    """A credential was verified and its use committed; the relay releases next."""

    cred_id: str
    key_id: int
    vendor: str
    driver: str
    po: str
    source: str
    uses: int
    not_before: float
    not_after: float
    use: int = 0
    chain: ChainLink | None = _chain()


@event_type("door.denied", prio=Prio.LOSS)
class DoorDenied:
    """A presented QR code was refused; ``reason`` is one of verify.Reason values."""

    reason: str
    detail: str
    source: str
    text_sha: str
    cred_id: str | None = None
    vendor: str | None = None
    po: str | None = None
    chain: ChainLink | None = _chain()


@event_type("door.state", prio=Prio.OPERATIONAL)
class DoorState:
    """Lock state changed: locked, unlocking, unlocked, open, jammed."""

    state: str
    prev: str
    cause: str
    lockout: bool
    chain: ChainLink | None = _chain()


@event_type("door.rex", prio=Prio.OPERATIONAL)
class DoorRex:
    """Request-to-exit pressed."""

    unlocked: bool
    chain: ChainLink | None = _chain()


@dataclass
class _Alarm:
    open_s: float
    chain: ChainLink | None = _chain()


@event_type("door.forced_open", prio=Prio.SAFETY)
class DoorForcedOpen(_Alarm):
    """The door opened with no grant and no request-to-exit."""


@event_type("door.held_open", prio=Prio.SAFETY)
class DoorHeldOpen(_Alarm):
    """The door stayed open longer than held_open_s after an authorised opening."""


@event_type("door.tamper", prio=Prio.SAFETY)
class DoorTamper(_Alarm):
    """The tamper switch went active."""


@event_type("door.alarm_cleared", prio=Prio.OPERATIONAL)
class DoorAlarmCleared:
    """An alarm condition ended (the lockout, if any, stays until reset)."""

    alarm: str
    chain: ChainLink | None = _chain()


@event_type("door.lockout", prio=Prio.SAFETY)
class DoorLockout:
    """Grants are refused until reset from the console or the server."""

    cause: str
    chain: ChainLink | None = _chain()


@event_type("door.lockout_reset", prio=Prio.SAFETY)
class DoorLockoutReset:
    """A lockout (or jam) was cleared by an operator."""

    cause: str
    by: str
    note: str
    chain: ChainLink | None = _chain()


@event_type("door.jammed", prio=Prio.SAFETY)
class DoorJammed:
    """The relay or lock monitor did not follow its command."""

    detail: str
    chain: ChainLink | None = _chain()


@event_type("door.checkin", prio=Prio.LOSS)
class DoorCheckin:
    """One delivery: scheduled window vs arrival, door times, cold-goods probe reading."""

    cred_id: str
    vendor: str
    driver: str
    po: str
    outcome: str
    window_start: float
    window_end: float
    arrived: float
    on_time: bool
    opened_at: float | None = None
    closed_at: float | None = None
    probe_c: float | None = doc_field("cold-goods probe reading at check-in", "degC",
                                      default=None)
    chain: ChainLink | None = _chain()


@event_type("door.revocations", prio=Prio.OPERATIONAL)
class DoorRevocations:
    """A new signed revocation list was applied."""

    serial: int
    creds: int
    keys: int
    chain: ChainLink | None = _chain()


@event_type("door.boot", prio=Prio.OPERATIONAL)
class DoorBoot:
    """The door app started; the relay was locked before anything else."""

    relay: str
    fail_safe: bool
    replayed: int
    chain: ChainLink | None = _chain()


@event_type("door.self_test", prio=Prio.OPERATIONAL)
class DoorSelfTest:
    """Relay self-test (console 'test relay')."""

    ok: bool
    detail: str
    by: str
    chain: ChainLink | None = _chain()


def event_from_body(etype: str, body: dict):
    """Rebuild the event dataclass for a stored door body (raises KeyError for a type that is
    not a door event, TypeError on unknown fields)."""
    if not etype.startswith("door."):
        raise KeyError(etype)
    cls = REGISTRY[etype].body
    args = dict(body)
    if isinstance(args.get("chain"), dict):
        args["chain"] = ChainLink(**args["chain"])
    return cls(**args)


def normalise(etype: str, body: dict) -> dict:
    """``body`` exactly as the envelope will carry it (defaults filled, no ``chain``), so the
    hash the door computes is the hash the store server recomputes."""
    out = dataclasses.asdict(event_from_body(etype, {k: v for k, v in body.items()
                                                     if k != "chain"}))
    out.pop("chain")
    return out
