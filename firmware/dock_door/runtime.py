"""Assemble a running door from plain options: relay first, then state, logic, inputs.

Example::

    ctl = build_door(DoorOptions(store="s0042", door="door-1", state_path="door.db",
                                 wiring=DoorWiring(RelayWiring(17), InputWiring(27))),
                     clock=SystemClock(), sink=service_sink(svc), pin_factory=pin_factory())
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from storeedge.drivers.clock import Clock
from storeedge.firmware.dock_door.controller import AuditLog, DoorController, DoorParts, Sink
from storeedge.firmware.dock_door.hardware import DoorWiring, LockRelay, build_relay
from storeedge.firmware.dock_door.logic import DoorLogic, DoorTimings
from storeedge.firmware.dock_door.store import DoorStateStore
from storeedge.firmware.dock_door.verify import DoorIdentity, Throttle, Verifier


@dataclass(frozen=True)
class ThrottleOptions:
    """Wrong-code back-off: free failures, then base_s doubling up to max_s (seconds)."""

    free_failures: int = 3
    base_s: float = 5.0
    max_s: float = 300.0
    quiet_s: float = 600.0


@dataclass(frozen=True)
class DoorOptions:
    """Everything :func:`build_door` needs besides the clock and the I/O seams.

    ``skew_s``: tolerated wall-clock skew, seconds; ``repeat_s``: same text ignored within.
    """

    store: str
    door: str
    state_path: str
    wiring: DoorWiring
    timings: DoorTimings = DoorTimings()
    throttle: ThrottleOptions = ThrottleOptions()
    skew_s: float = 120.0
    repeat_s: float = 3.0


@dataclass
class DoorSeams:
    """I/O seams: event ``sink``, gpiozero ``pin_factory``, optional cold ``probe`` (degC or
    None), and the ``on_committed`` stage hook (bench, kill test)."""

    sink: Sink
    pin_factory: object = None
    probe: Callable[[], float | None] | None = None
    on_committed: Callable[[object], None] | None = None


def build_door(opts: DoorOptions, clock: Clock, seams: DoorSeams, *,
               relay: LockRelay | None = None) -> DoorController:
    """Build the relay (locked) before anything else, then the rest; replays pending events.

    Pass ``relay`` when the caller already built it (main builds it before even opening the
    outbox).  On any later failure the relay stays constructed and locked.
    """
    if relay is None:
        relay = build_relay(opts.wiring.relay, pin_factory=seams.pin_factory)
    state = DoorStateStore(opts.state_path, dev=opts.door)
    t = opts.throttle
    parts = DoorParts(
        state=state,
        verifier=Verifier(state, DoorIdentity(opts.store, opts.door), clock, skew_s=opts.skew_s),
        logic=DoorLogic(clock, opts.timings, has_monitor=opts.wiring.monitor is not None),
        relay=relay,
        audit=AuditLog(state, seams.sink),
        throttle=Throttle(free_failures=t.free_failures, base_s=t.base_s, max_s=t.max_s,
                          quiet_s=t.quiet_s),
        probe=seams.probe)
    ctl = DoorController(parts, clock, repeat_s=opts.repeat_s, on_committed=seams.on_committed)
    replayed = parts.audit.flush_pending()
    ctl.record("door.boot", {"relay": "unlocked" if relay.unlocked else "locked",
                             "fail_safe": opts.wiring.relay.fail_safe, "replayed": replayed})
    ctl.attach_inputs(opts.wiring, pin_factory=seams.pin_factory)
    state.prune_used(clock.time(), opts.skew_s)     # judged by the previous boot's mark
    ctl.advance_clock_hwm()
    return ctl
