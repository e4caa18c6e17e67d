"""DoorController: QR texts and switch inputs in, relay and chained audit events out.

Grant path (measured by bench/door_latency.py)::

    present(text) -> throttle -> Verifier.check -> lockout/jam check
                  -> DoorStateStore.consume (durable commit of the use + door.granted)
                  -> on_committed hook -> DoorLogic.grant -> relay on (read back)
                  -> events handed to the sink (outbox)

Public API used by the console (issue 9)::

    ctl.self_test_relay(by="console", pulse_s=1.0) -> SelfTestResult
    ctl.reset_lockout(by="console:alice", note="forced by forklift, checked") -> ResetResult
    ctl.status() -> DoorStatus
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from storeedge.drivers.clock import Clock
from storeedge.firmware.dock_door.exc import RelayFault, StateStoreError
from storeedge.firmware.dock_door.hardware import DoorWiring, LockRelay, SwitchInput
from storeedge.firmware.dock_door.logic import DoorLogic, Notice, ResetResult, Visit
from storeedge.firmware.dock_door.store import AuditRecord, DoorStateStore
from storeedge.firmware.dock_door.verify import (EARLIEST_SANE_TIME, Decision, Reason, Throttle,
                                                 Verifier, deny)

log = logging.getLogger(__name__)
Sink = Callable[[AuditRecord], None]
HWM_EVERY_S = 60.0      # the wall-clock high-water mark is made durable this often (monotonic)
_NOT_COUNTED = (Reason.THROTTLED, Reason.LOCKOUT, Reason.JAMMED, Reason.CLOCK_NOT_SET,
                Reason.CLOCK_BEHIND,
                Reason.DOOR_ERROR)


class AuditLog:
    """Chains each event durably in the state store, then hands it to ``sink`` (the outbox).

    A crash between the two leaves the record pending; :meth:`flush_pending` re-sends it at
    the next start (the store server sees an identical duplicate at worst).
    """

    def __init__(self, state: DoorStateStore, sink: Sink):
        self.state, self.sink = state, sink
        self.failed = 0

    def record(self, etype: str, body: dict, t: float) -> AuditRecord:
        rec = self.state.append_audit(etype, t, body)
        self.emit(rec)
        return rec

    def emit(self, rec: AuditRecord) -> bool:
        try:
            self.sink(rec)
        except Exception:       # outbox full or closed: stays pending, retried later
            self.failed += 1
            return False
        self.state.mark_emitted(rec.i)
        return True

    def flush_pending(self) -> int:
        """Re-send records that never reached the sink; returns how many were sent."""
        return sum(self.emit(rec) for rec in self.state.pending_audit())


@dataclass
class DoorParts:
    """What a :class:`DoorController` is built from."""

    state: DoorStateStore
    verifier: Verifier
    logic: DoorLogic
    relay: LockRelay
    audit: AuditLog
    throttle: Throttle = field(default_factory=Throttle)
    probe: Callable[[], float | None] | None = None


@dataclass(frozen=True)
class GrantTiming:
    """Seconds spent per stage of the last grant (perf_counter differences)."""

    verify_s: float
    commit_s: float
    relay_s: float


@dataclass(frozen=True)
class SelfTestResult:
    """Outcome of :meth:`DoorController.self_test_relay`."""

    ok: bool
    detail: str
    pulse_s: float


@dataclass(frozen=True)
class DoorStatus:
    """Snapshot for the console and the demo."""

    state: str
    relay_unlocked: bool
    door_closed: bool
    lockout: str | None
    alarms: tuple[str, ...]
    fault: str | None
    trusted_keys: tuple[int, ...]
    revocation_serial: int


def text_sha(text: str) -> str:
    """Short hash of a QR text (correlates repeated scans without logging the code)."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


class DoorController:
    """Runs one door.  Thread-safe: scanner threads, gpiozero callbacks and the main loop may
    call in concurrently (one lock serialises them).

    Args:
        parts: :class:`DoorParts`.
        clock: the clock the logic and verifier use.
        repeat_s: the same QR text seen again within this many seconds is ignored (a camera
            sees a code in many consecutive frames).
        on_committed: called with the credential after its use is durable and before the
            relay switches (bench stage marker; kill test).
    """

    def __init__(self, parts: DoorParts, clock: Clock, *, repeat_s: float = 3.0,
                 on_committed: Callable[[object], None] | None = None):
        self.p, self.clock, self.repeat_s = parts, clock, repeat_s
        self.on_committed = on_committed
        self.last_timing: GrantTiming | None = None
        self._lock = threading.RLock()
        self._recent: dict[str, float] = {}
        self._inputs: list[SwitchInput] = []
        self.decisions = 0
        self._hwm_due = float("-inf")

    # -- QR path --------------------------------------------------------------------------
    def present(self, text: str, source: str = "scanner") -> Decision | None:
        """Decide on one scanned QR text; None when it repeats a text seen within
        ``repeat_s`` (no event).  The relay is on when a granted decision is returned."""
        with self._lock:
            now = self.clock.monotonic()
            if self._repeat(text, now):
                return None
            try:
                t0 = time.perf_counter()
                d = self._decide(text, now)
                if not d.granted:
                    self._denied(d, text, source, now)
                    return d
                return self._grant(d, text, source, t0)
            except StateStoreError as exc:      # disk failing: stay locked, say why
                log.error("door state store failed while deciding: %s", exc)
                self._sync_relay()
                return deny(Reason.DOOR_ERROR, f"door state store failed: {exc}")

    def _repeat(self, text: str, now: float) -> bool:
        for old in [k for k, t in self._recent.items() if now - t > self.repeat_s]:
            del self._recent[old]
        seen = text in self._recent
        self._recent[text] = now
        return seen

    def _decide(self, text: str, now: float) -> Decision:
        th = self.p.throttle.status(now)
        if th.blocked:
            return deny(Reason.THROTTLED, f"too many wrong codes; wait {th.until - now:.0f} s")
        d = self.p.verifier.check(text)
        if d.granted:
            why = self.p.logic.can_grant()
            if why:
                return deny(Reason(why), f"door is in {why}; ask the store to reset it",
                            d.credential)
        return d

    def _denied(self, d: Decision, text: str, source: str, now: float) -> None:
        if d.reason not in _NOT_COUNTED:
            self.p.throttle.failure(now)
        c = d.credential
        body = {"reason": d.reason.value, "detail": d.detail, "source": source,
                "text_sha": text_sha(text), "cred_id": c.cred_hex if c else None,
                "vendor": c.vendor if c else None, "po": c.po if c else None}
        self.decisions += 1
        self.p.audit.record("door.denied", body, self.clock.time())

    def _grant(self, d: Decision, text: str, source: str, t0: float) -> Decision:
        c, wall = d.credential, self.clock.time()
        body = {"cred_id": c.cred_hex, "key_id": c.key_id, "vendor": c.vendor,
                "driver": c.driver, "po": c.po, "source": source, "uses": c.uses,
                "not_before": float(c.not_before), "not_after": float(c.not_after)}
        t1 = time.perf_counter()
        res = self.p.state.consume(c, wall, ("door.granted", body))
        t2 = time.perf_counter()
        if not res.ok:
            d = deny(Reason.USED, f"credential already used {res.use} of {c.uses} time(s)", c)
            self._denied(d, text, source, self.clock.monotonic())
            return d
        if self.on_committed is not None:
            self.on_committed(c)
        self.p.logic.grant(Visit(c.cred_hex, c.vendor, c.driver, c.po, float(c.not_before),
                                 float(c.not_after), wall))
        self._sync_relay()
        t3 = time.perf_counter()
        self.last_timing = GrantTiming(t1 - t0, t2 - t1, t3 - t2)
        self.p.throttle.success()
        self.decisions += 1
        self.p.audit.emit(res.record)
        self._flush_notices()
        if not self.p.relay.unlocked:       # committed, but the relay did not release
            return deny(Reason.JAMMED, f"credential used but the lock did not release: "
                        f"{self.p.logic.fault}", c)
        return d

    # -- relay and notices ----------------------------------------------------------------
    def _sync_relay(self) -> None:
        want = self.p.logic.relay_unlocked
        if self.p.relay.unlocked == want:
            return
        try:
            self.p.relay.set(want)
        except RelayFault as exc:
            self.p.logic.relay_fault(str(exc))
            if want:                                  # never leave it half-released
                try:
                    self.p.relay.lock()
                except RelayFault:
                    pass

    def _flush_notices(self) -> None:
        for n in self.p.logic.drain():
            self.p.audit.record(n.type, self._body(n), self.clock.time())

    def _body(self, n: Notice) -> dict:
        if n.type != "door.checkin":
            return dict(n.body)
        v: Visit = n.body["visit"]
        probe = self.p.probe() if self.p.probe else None
        return {"cred_id": v.cred_id, "vendor": v.vendor, "driver": v.driver, "po": v.po,
                "outcome": n.body["outcome"], "window_start": v.not_before,
                "window_end": v.not_after, "arrived": v.granted_at,
                "on_time": v.not_before <= v.granted_at <= v.not_after,
                "opened_at": v.opened_at, "closed_at": v.closed_at, "probe_c": probe}

    def _run(self, fn: Callable[[], object]):
        with self._lock:
            out = fn()
            self._sync_relay()
            self._flush_notices()
            return out

    # -- inputs and timers ----------------------------------------------------------------
    def tick(self) -> None:
        """Advance the door's timers (call every 10-50 ms from the main loop); every
        ``HWM_EVERY_S`` also raise the durable wall-clock high-water mark."""
        self._run(self.p.logic.tick)
        now = self.clock.monotonic()
        if now >= self._hwm_due:
            self._hwm_due = now + HWM_EVERY_S
            self.advance_clock_hwm()

    def advance_clock_hwm(self) -> None:
        """Record the wall clock as the high-water mark when it is set and not behind it."""
        wall, skew = self.clock.time(), self.p.verifier.skew_s
        if wall < EARLIEST_SANE_TIME or wall < self.p.state.clock_hwm() - skew:
            return
        try:
            self.p.state.advance_clock_hwm(wall)
        except StateStoreError as exc:
            log.error("cannot record the clock high-water mark: %s", exc)

    def on_contact(self, closed: bool) -> None:
        self._run(lambda: self.p.logic.contact(closed))

    def on_rex(self, pressed: bool) -> None:
        if pressed:
            self._run(self.p.logic.rex)

    def on_tamper(self, active: bool) -> None:
        self._run(lambda: self.p.logic.tamper(active))

    def on_monitor(self, locked: bool) -> None:
        self._run(lambda: self.p.logic.lock_monitor(locked))

    def attach_inputs(self, wiring: DoorWiring, *, pin_factory=None) -> None:
        """Build the switch inputs (after the relay) and sync the logic to their state."""
        lg = self.p.logic
        pairs = [(wiring.contact, self.on_contact, lg.boot_contact),
                 (wiring.rex, self.on_rex, None), (wiring.tamper, self.on_tamper, lg.tamper),
                 (wiring.monitor, self.on_monitor, lg.lock_monitor)]
        for w, handler, initial in pairs:
            if w is not None:
                sw = SwitchInput(w, handler, pin_factory=pin_factory)
                self._inputs.append(sw)
                if initial is not None:
                    self._run(lambda: initial(sw.active))

    # -- operator API (console, server commands) ------------------------------------------
    def reset_lockout(self, by: str, note: str = "") -> ResetResult:
        """Clear a lockout/jam once its cause is gone; recorded with ``by`` and ``note``."""
        return self._run(lambda: self.p.logic.reset_lockout(by, note))

    def self_test_relay(self, by: str = "console", pulse_s: float = 1.0) -> SelfTestResult:
        """Release the lock for ``pulse_s`` seconds (relocked by :meth:`tick`) and check the
        relay output reads back; refused while the door is open, in use or locked out.

        A local console action only (no network command moves the relay).  An opening during
        the pulse is judged by the contact like any other: it raises ``forced_open``."""
        with self._lock:
            lg = self.p.logic
            why = lg.can_grant() or ("door is open" if not lg.door_closed else None) or \
                ("a delivery is in progress" if lg.visit else None)
            if why:
                return SelfTestResult(False, f"refused: {why}", 0.0)
            lg.test_pulse(pulse_s)
            self._sync_relay()
            ok = lg.fault is None and self.p.relay.unlocked
            detail = "relay released and read back" if ok else f"relay fault: {lg.fault}"
            self.p.audit.record("door.self_test", {"ok": ok, "detail": detail, "by": by},
                                self.clock.time())
            self._flush_notices()
            return SelfTestResult(ok, detail, pulse_s)

    def status(self) -> DoorStatus:
        with self._lock:
            lg = self.p.logic
            return DoorStatus(lg.state.value, self.p.relay.unlocked, lg.door_closed, lg.lockout,
                              tuple(sorted(lg.alarms)), lg.fault,
                              tuple(self.p.state.trusted_kids()),
                              self.p.state.revocation_serial())

    def record(self, etype: str, body: dict) -> AuditRecord:
        """Record an app event (boot, revocations) in the chain."""
        with self._lock:
            return self.p.audit.record(etype, body, self.clock.time())

    def close(self) -> None:
        """Release inputs; the relay is left locked (closed by its owner)."""
        for sw in self._inputs:
            sw.close()
        self._inputs.clear()
