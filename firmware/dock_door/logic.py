"""Door state machine: pure logic, clock injected, no I/O.

Inputs are method calls (:meth:`DoorLogic.grant`, :meth:`rex`, :meth:`contact`, :meth:`tamper`,
:meth:`lock_monitor`, :meth:`relay_fault`, :meth:`tick`); outputs are :attr:`relay_unlocked`
(what the lock relay must be driven to) and :class:`Notice` objects drained with
:meth:`drain` (each becomes a chained audit event).

Lock states (published like a smart lock): ``locked``, ``unlocking`` (relay released, lock
monitor not yet confirming), ``unlocked``, ``open``, ``jammed``.  Alarms and the lockout flag
are separate: ``forced_open`` (contact opened without a grant or REX), ``held_open`` (open
longer than ``held_open_s`` after an authorised opening), ``tamper``.  The alarms listed in
``lockout_on`` put the door in lockout: grants are refused until :meth:`reset_lockout`.
Request-to-exit always works, also in lockout (free egress).

Relock rule: the relay relocks when the door closes after opening, or ``unlock_s`` after the
grant, whichever comes first (a door still open at that point latches when it closes).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from storeedge.drivers.clock import Clock


class LockState(str, Enum):
    LOCKED = "locked"
    UNLOCKING = "unlocking"
    UNLOCKED = "unlocked"
    OPEN = "open"
    JAMMED = "jammed"


@dataclass(frozen=True)
class DoorTimings:
    """Door timers, seconds.  ``rex_unlocks``: REX also releases the lock (else it only shunts
    the forced-open alarm).  ``lockout_on``: alarms that latch a lockout."""

    unlock_s: float = 10.0
    held_open_s: float = 60.0
    rex_s: float = 5.0
    jam_s: float = 2.0
    rex_unlocks: bool = True
    lockout_on: tuple[str, ...] = ("forced_open", "held_open", "tamper")


@dataclass(frozen=True)
class Notice:
    """Something to record: an event type name and its body fields."""

    type: str
    body: dict


@dataclass
class Visit:
    """One granted delivery, from grant to close.  Wall times are epoch seconds."""

    cred_id: str
    vendor: str
    driver: str
    po: str
    not_before: float                  # the credential's delivery window
    not_after: float
    granted_at: float
    opened_at: float | None = None     # the door contact opened (None: not yet)
    closed_at: float | None = None


@dataclass
class _Timers:
    """Monotonic deadlines (seconds) or None."""

    relock_at: float | None = None
    rex_until: float | None = None
    opened_mono: float | None = None
    monitor_due: float | None = None


@dataclass
class ResetResult:
    """Outcome of :meth:`DoorLogic.reset_lockout` (``ok`` False says why in ``detail``)."""

    ok: bool
    detail: str


class DoorLogic:
    """The door's state machine (thread-unsafe: the controller serialises calls).

    Args:
        clock: monotonic time for timers, wall time for check-in records.
        timings: :class:`DoorTimings`.
        door_closed: contact state at boot (True = closed).
        has_monitor: a lock-position monitor input is wired (enables ``unlocking``/jam checks).
    """

    def __init__(self, clock: Clock, timings: DoorTimings = DoorTimings(), *,
                 door_closed: bool = True, has_monitor: bool = False):
        self.clock, self.t = clock, timings
        self.relay_unlocked = False
        self.door_closed = door_closed
        self.has_monitor = has_monitor
        self.monitor_locked: bool | None = None
        self.alarms: set[str] = set()
        self.lockout: str | None = None        # cause of the lockout, or None
        self.fault: str | None = None          # jam/relay fault detail, or None
        self.visit: Visit | None = None
        self._authorised_open = False
        self._timers = _Timers()
        self._notices: list[Notice] = []
        self.state = self._derive_state()
        self.boot_contact(door_closed)

    # -- outputs --------------------------------------------------------------------------
    def drain(self) -> list[Notice]:
        """Notices since the last call, oldest first."""
        out, self._notices = self._notices, []
        return out

    def _note(self, etype: str, **body) -> None:
        self._notices.append(Notice(etype, body))

    def _derive_state(self) -> LockState:
        if self.fault:
            return LockState.JAMMED
        if not self.door_closed:
            return LockState.OPEN
        if not self.relay_unlocked:
            return LockState.LOCKED
        if self.has_monitor and self.monitor_locked is not False:
            return LockState.UNLOCKING
        return LockState.UNLOCKED

    def _update_state(self, cause: str) -> None:
        new = self._derive_state()
        if new != self.state:
            self._note("door.state", state=new.value, prev=self.state.value, cause=cause,
                       lockout=self.lockout is not None)
            self.state = new

    def _set_relay(self, unlocked: bool) -> None:
        if unlocked != self.relay_unlocked:
            self.relay_unlocked = unlocked
            self._timers.monitor_due = (self.clock.monotonic() + self.t.jam_s
                                        if self.has_monitor else None)

    # -- grant / REX ----------------------------------------------------------------------
    def can_grant(self) -> str | None:
        """None when a grant may proceed, else the denial reason (``lockout`` or ``jammed``)."""
        if self.lockout is not None:
            return "lockout"
        if self.fault is not None:
            return "jammed"
        return None

    def grant(self, visit: Visit) -> None:
        """A verified, durably consumed credential: release the lock for ``unlock_s``."""
        if self.visit is not None:
            self._finish_visit("superseded")
        self.visit = visit
        if not self.door_closed and visit.opened_at is None:
            visit.opened_at = self.clock.time()     # door already open: passage starts now
        self._authorised_open = True
        self._set_relay(True)
        self._timers.relock_at = self.clock.monotonic() + self.t.unlock_s
        self._update_state("grant")

    def test_pulse(self, seconds: float) -> None:
        """Operator relay test: release the lock for ``seconds``.  Opening the door during
        the pulse is NOT authorised: the contact raises ``forced_open`` as at any other time."""
        self._set_relay(True)
        self._timers.relock_at = self.clock.monotonic() + seconds
        self._update_state("self_test")

    def rex(self) -> None:
        """Request-to-exit pressed: shunt the contact for ``rex_s`` (and unlock if configured)."""
        now = self.clock.monotonic()
        self._timers.rex_until = now + self.t.rex_s
        self._authorised_open = True
        if self.t.rex_unlocks:
            self._set_relay(True)
            self._timers.relock_at = max(self._timers.relock_at or 0.0, now + self.t.rex_s)
        self._note("door.rex", unlocked=self.t.rex_unlocks)
        self._update_state("rex")

    # -- sensors --------------------------------------------------------------------------
    def boot_contact(self, closed: bool) -> None:
        """Contact state read at start: an open door is watched as held-open, not forced
        (nobody knows when it opened)."""
        self.door_closed = closed
        self._timers.opened_mono = None if closed else self.clock.monotonic()
        self._update_state("boot")

    def contact(self, closed: bool) -> None:
        """Door contact changed (True = closed)."""
        if closed == self.door_closed:
            return
        self.door_closed = closed
        now = self.clock.monotonic()
        if not closed:
            self._opened(now)
        else:
            self._closed()
        self._update_state("contact")

    def _opened(self, now: float) -> None:
        self._timers.opened_mono = now
        rex_ok = self._timers.rex_until is not None and now <= self._timers.rex_until
        if not (self._authorised_open or rex_ok):
            self._alarm("forced_open")
        elif self.visit is not None and self.visit.opened_at is None:
            self.visit.opened_at = self.clock.time()

    def _closed(self) -> None:
        self._timers.opened_mono = None
        self._authorised_open = False
        for alarm in ("forced_open", "held_open"):
            if alarm in self.alarms:
                self.alarms.discard(alarm)
                self._note("door.alarm_cleared", alarm=alarm)
        self._relock()
        if self.visit is not None and self.visit.opened_at is not None:
            self.visit.closed_at = self.clock.time()
            self._finish_visit("closed")

    def tamper(self, active: bool) -> None:
        """Tamper switch changed (True = enclosure opened / reader removed)."""
        if active and "tamper" not in self.alarms:
            self._alarm("tamper")
        elif not active and "tamper" in self.alarms:
            self.alarms.discard("tamper")
            self._note("door.alarm_cleared", alarm="tamper")

    def lock_monitor(self, locked: bool) -> None:
        """Lock-position monitor changed (True = bolt/magnet reports locked)."""
        self.monitor_locked = locked
        self._update_state("monitor")

    def relay_fault(self, detail: str) -> None:
        """The relay output did not read back as commanded."""
        self._jam(detail)

    def _jam(self, detail: str) -> None:
        """Jammed: the wanted relay state falls back to locked (so a later reset never
        releases the door by itself) and the current delivery's check-in says so."""
        self._timers.relock_at = None
        self.relay_unlocked = False
        if self.visit is not None:
            self._finish_visit("jammed")
        if self.fault is None:
            self.fault = detail
            self._note("door.jammed", detail=detail)
            self._update_state("fault")

    def _alarm(self, alarm: str) -> None:
        self.alarms.add(alarm)
        self._note(f"door.{alarm}", open_s=self._open_for())
        if alarm in self.t.lockout_on and self.lockout is None:
            self.lockout = alarm
            self._note("door.lockout", cause=alarm)
            now, rex = self.clock.monotonic(), self._timers.rex_until
            if self.relay_unlocked and not (rex is not None and now <= rex):
                self._relock()              # e.g. tamper during a grant: lock at once

    def _open_for(self) -> float:
        if self._timers.opened_mono is None:
            return 0.0
        return round(self.clock.monotonic() - self._timers.opened_mono, 3)

    # -- timers ---------------------------------------------------------------------------
    def tick(self) -> None:
        """Advance timers to ``clock.monotonic()``; call every few tens of milliseconds."""
        now, tm = self.clock.monotonic(), self._timers
        if tm.relock_at is not None and now >= tm.relock_at:
            self._relock()
            if self.visit is not None and self.visit.opened_at is None:
                self._finish_visit("not_opened")
            self._authorised_open = not self.door_closed and self._authorised_open
        if tm.rex_until is not None and now > tm.rex_until:
            tm.rex_until = None
            if self.relay_unlocked and (self.lockout or self.fault):
                self._relock()              # egress window over: back to locked at once
        if (tm.opened_mono is not None and now - tm.opened_mono >= self.t.held_open_s
                and "held_open" not in self.alarms and "forced_open" not in self.alarms):
            self._alarm("held_open")
        self._check_monitor(now)
        self._update_state("timer")

    def _check_monitor(self, now: float) -> None:
        tm = self._timers
        if not self.has_monitor or tm.monitor_due is None or now < tm.monitor_due:
            return
        tm.monitor_due = None
        if self.monitor_locked is None or self.monitor_locked == self.relay_unlocked:
            want = "unlocked" if self.relay_unlocked else "locked"
            self._jam(f"lock monitor did not report {want} within {self.t.jam_s} s")

    def _relock(self) -> None:
        self._timers.relock_at = None
        self._set_relay(False)

    def _finish_visit(self, outcome: str) -> None:
        v, self.visit = self.visit, None
        self._note("door.checkin", outcome=outcome, visit=v)

    # -- operator -------------------------------------------------------------------------
    def reset_lockout(self, by: str, note: str = "") -> ResetResult:
        """Clear the lockout (and a jam) when its cause is gone; records who and why."""
        if self.lockout is None and self.fault is None:
            return ResetResult(True, "no lockout")
        if "tamper" in self.alarms:
            return ResetResult(False, "tamper switch still active")
        if not self.door_closed:
            return ResetResult(False, "door is still open")
        cause, self.lockout, self.fault = self.lockout or "jammed", None, None
        self.alarms.discard("forced_open")
        self.alarms.discard("held_open")
        self._timers.monitor_due = None
        self._note("door.lockout_reset", cause=cause, by=by, note=note)
        self._update_state("reset")
        return ResetResult(True, f"lockout ({cause}) cleared")
