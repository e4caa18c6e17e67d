"""Dock door event types.  Every body ends with ``chain`` (see :mod:`.audit`).

Times are epoch seconds (UTC, float); ``cred_id`` is 24 hex characters.  QR texts are never
put in events (``text_sha`` is a short hash to correlate repeated bad scans).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from storeedge.events import event_type
from storeedge.audit import ChainLink

# (type name) -> (dataclass, priority 0..3): the door's own types, also in the common REGISTRY
EVENT_TYPES: dict[str, tuple[type, int]] = {}


def _door_event(name: str, prio: int):
    def wrap(cls):
        cls = event_type(name, prio)(cls)
        EVENT_TYPES[name] = (cls, prio)
        return cls
    return wrap


def _doc(text: str, unit: str | None = None):
    meta = {"doc": text}
    if unit:
        meta["unit"] = unit
    return field(default=None, metadata=meta)


@_door_event("door.granted", 1)
@dataclass
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
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.denied", 1)
@dataclass
class DoorDenied:
    """A presented QR code was refused; ``reason`` is one of verify.Reason values."""

    reason: str
    detail: str
    source: str
    text_sha: str
    cred_id: str | None = None
    vendor: str | None = None
    po: str | None = None
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.state", 2)
@dataclass
class DoorState:
    """Lock state changed: locked, unlocking, unlocked, open, jammed."""

    state: str
    prev: str
    cause: str
    lockout: bool
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.rex", 2)
@dataclass
class DoorRex:
    """Request-to-exit pressed."""

    unlocked: bool
    chain: ChainLink | None = _doc("audit chain link")


@dataclass
class _Alarm:
    open_s: float
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.forced_open", 0)
@dataclass
class DoorForcedOpen(_Alarm):
    """The door opened with no grant and no request-to-exit."""


@_door_event("door.held_open", 0)
@dataclass
class DoorHeldOpen(_Alarm):
    """The door stayed open longer than held_open_s after an authorised opening."""


@_door_event("door.tamper", 0)
@dataclass
class DoorTamper(_Alarm):
    """The tamper switch went active."""


@_door_event("door.alarm_cleared", 2)
@dataclass
class DoorAlarmCleared:
    """An alarm condition ended (the lockout, if any, stays until reset)."""

    alarm: str
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.lockout", 0)
@dataclass
class DoorLockout:
    """Grants are refused until reset from the console or the server."""

    cause: str
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.lockout_reset", 0)
@dataclass
class DoorLockoutReset:
    """A lockout (or jam) was cleared by an operator."""

    cause: str
    by: str
    note: str
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.jammed", 0)
@dataclass
class DoorJammed:
    """The relay or lock monitor did not follow its command."""

    detail: str
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.checkin", 1)
@dataclass
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
    probe_c: float | None = _doc("cold-goods probe reading at check-in", "degC")
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.revocations", 2)
@dataclass
class DoorRevocations:
    """A new signed revocation list was applied."""

    serial: int
    creds: int
    keys: int
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.boot", 2)
@dataclass
class DoorBoot:
    """The door app started; the relay was locked before anything else."""

    relay: str
    fail_safe: bool
    replayed: int
    chain: ChainLink | None = _doc("audit chain link")


@_door_event("door.self_test", 2)
@dataclass
class DoorSelfTest:
    """Relay self-test (console 'test relay')."""

    ok: bool
    detail: str
    by: str
    chain: ChainLink | None = _doc("audit chain link")


def event_from_body(etype: str, body: dict):
    """Rebuild the event dataclass for a stored body (raises TypeError on unknown fields)."""
    cls = EVENT_TYPES[etype][0]
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
