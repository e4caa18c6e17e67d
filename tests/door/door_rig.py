"""Door test rig: a door on gpiozero MockFactory pins, real SQLite state, simulated clock."""
from __future__ import annotations

from dataclasses import dataclass, field

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.firmware.dock_door.credential import CredentialSpec, generate_signing_key, issue
from storeedge.firmware.dock_door.hardware import DoorWiring, InputWiring, RelayWiring
from storeedge.firmware.dock_door.logic import DoorTimings
from storeedge.firmware.dock_door.runtime import DoorOptions, DoorSeams, build_door

T0 = 1_795_000_000.0
RELAY, CONTACT, REX, TAMPER, MONITOR = 17, 27, 22, 23, 24


def wiring(monitor: bool = False, fail_safe: bool = False) -> DoorWiring:
    return DoorWiring(relay=RelayWiring(RELAY, fail_safe=fail_safe), contact=InputWiring(CONTACT),
                      rex=InputWiring(REX), tamper=InputWiring(TAMPER),
                      monitor=InputWiring(MONITOR) if monitor else None)


@dataclass
class Rig:
    """A built door plus handles to drive its mock pins and read what it recorded."""

    ctl: object
    clock: SimulatedClock
    factory: object
    key: object
    records: list = field(default_factory=list)
    fail_safe: bool = False

    def spec(self, **kw) -> CredentialSpec:
        base = dict(store="s0042", door="door-1", vendor="ACME Foods", driver="D. Rivera",
                    po="PO-12345", not_before=int(T0 - 600), not_after=int(T0 + 3600))
        base.update(kw)
        return CredentialSpec(**base)

    def issue(self, key=None, **kw) -> str:
        return issue(key or self.key, self.spec(**kw))

    @property
    def relay_pin(self):
        return self.factory.pin(RELAY)

    @property
    def unlocked(self) -> bool:
        """Read the physical relay pin: energised means unlocked for fail-secure."""
        return self.relay_pin.state != self.fail_safe

    def close_door(self):
        self.factory.pin(CONTACT).drive_low()

    def open_door(self):
        self.factory.pin(CONTACT).drive_high()

    def press_rex(self):
        self.factory.pin(REX).drive_low()
        self.factory.pin(REX).drive_high()

    def tamper(self, active: bool):
        (self.factory.pin(TAMPER).drive_low if active else self.factory.pin(TAMPER).drive_high)()

    def advance(self, seconds: float, step: float = 0.5):
        """Advance the simulated clock in steps, ticking the controller like the main loop."""
        left = seconds
        while left > 1e-9:
            dt = min(step, left)
            self.clock.advance(dt)
            self.ctl.tick()
            left -= dt

    def types(self) -> list[str]:
        return [r.type for r in self.records]

    def last(self, etype: str):
        return [r for r in self.records if r.type == etype][-1]


def make_rig(tmp_path, *, timings=DoorTimings(), monitor=False, fail_safe=False, probe=None,
             name="door.db", key=None, clock=None) -> Rig:
    clock = clock or SimulatedClock(start=T0)
    factory = new_mock_factory()
    key = key or generate_signing_key(1)
    records: list = []
    opts = DoorOptions(store="s0042", door="door-1", state_path=str(tmp_path / name),
                       wiring=wiring(monitor, fail_safe), timings=timings)
    ctl = build_door(opts, clock, DoorSeams(sink=records.append, pin_factory=factory, probe=probe))
    ctl.p.state.trust_key(key.kid, key.public)
    rig = Rig(ctl, clock, factory, key, records, fail_safe)
    rig.close_door()
    if monitor:
        factory.pin(MONITOR).drive_low()      # lock monitor reports locked
    records.clear()
    return rig


