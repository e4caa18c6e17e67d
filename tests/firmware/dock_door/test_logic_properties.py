"""Property test of the pure door state machine: any sequence of grants, REX presses, door
movements, tamper changes and time steps keeps the safety invariants."""
from __future__ import annotations

from hypothesis import example, given, settings, strategies as st

from storeedge.drivers.clock import SimulatedClock
from storeedge.firmware.dock_door.logic import DoorLogic, DoorTimings, LockState, Visit

T = DoorTimings()
LONGEST = max(T.unlock_s, T.rex_s)
ACTIONS = st.lists(st.one_of(
    st.just(("grant",)), st.just(("rex",)), st.just(("open",)), st.just(("close",)),
    st.tuples(st.just("tamper"), st.booleans()), st.just(("reset",)), st.just(("fault",)),
    st.tuples(st.just("monitor"), st.booleans()),
    st.tuples(st.just("wait"), st.floats(0.0, 90.0))), max_size=40)


def visit(clock) -> Visit:
    return Visit("00" * 12, "v", "d", "po", clock.time() - 10, clock.time() + 10, clock.time())


def apply(lg: DoorLogic, clock: SimulatedClock, action: tuple) -> None:
    kind = action[0]
    if kind == "grant":
        if lg.can_grant() is None:          # the controller never grants otherwise
            lg.grant(visit(clock))
    elif kind == "rex":
        lg.rex()
    elif kind in ("open", "close"):
        lg.contact(kind == "close")
    elif kind == "tamper":
        lg.tamper(action[1])
    elif kind == "reset":
        lg.reset_lockout("prop", "")
    elif kind == "monitor":
        lg.lock_monitor(action[1])
    elif kind == "fault":
        lg.relay_fault("prop: relay stuck")
    else:
        left = action[1]
        while left > 0:
            step = min(0.5, left)
            clock.advance(step)
            lg.tick()
            left -= step


def check_invariants(lg: DoorLogic, clock: SimulatedClock) -> None:
    now = clock.monotonic()
    relock = lg._timers.relock_at
    if lg.relay_unlocked:
        # never released without a pending relock, never longer than the longest window
        assert relock is not None and relock - now <= LONGEST + 1e-9
        if lg.fault is not None or lg.lockout is not None:   # only REX (egress) releases then
            assert lg._timers.rex_until is not None and T.rex_unlocks
    if "forced_open" in lg.alarms or "tamper" in lg.alarms:
        assert lg.lockout is not None
    assert (lg.state == LockState.JAMMED) == (lg.fault is not None)
    if lg.fault is None:
        assert (lg.state == LockState.OPEN) == (not lg.door_closed)


@settings(max_examples=400, deadline=None)
@given(actions=ACTIONS)
@example(actions=[("grant",), ("rex",), ("tamper", True), ("wait", 6.0)])
@example(actions=[("grant",), ("rex",), ("fault",), ("wait", 6.0)])
@example(actions=[("grant",), ("monitor", False), ("wait", 3.0)])
def test_invariants_hold_for_any_sequence(actions):
    clock = SimulatedClock()
    lg = DoorLogic(clock, T, has_monitor=any(a[0] == "monitor" for a in actions))
    for action in actions:
        apply(lg, clock, action)
        lg.drain()
        check_invariants(lg, clock)
    # whatever happened, left alone the door relocks within the longest window
    apply(lg, clock, ("wait", LONGEST + 1.0))
    assert not lg.relay_unlocked
    notices = lg.drain()
    assert all(n.type.startswith("door.") for n in notices)


@settings(max_examples=200, deadline=None)
@given(actions=ACTIONS)
def test_no_grant_in_lockout_and_grant_always_releases_otherwise(actions):
    clock = SimulatedClock()
    lg = DoorLogic(clock, T)
    for action in actions:
        apply(lg, clock, action)
    if lg.can_grant() is None:
        lg.grant(visit(clock))
        assert lg.relay_unlocked
    else:
        assert lg.lockout is not None or lg.fault is not None
