"""A dock door on gpiozero MockFactory pins (real SQLite state) trusting the page's key."""
from __future__ import annotations

import time
from dataclasses import dataclass

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.firmware.dock_door.hardware import DoorWiring, InputWiring, RelayWiring
from storeedge.firmware.dock_door.logic import DoorTimings
from storeedge.firmware.dock_door.runtime import DoorOptions, DoorSeams, build_door

RELAY, CONTACT, REX, TAMPER = 17, 27, 22, 23


@dataclass
class DoorRig:
    """A built door: its controller, simulated clock and mock pins."""

    ctl: object
    clock: SimulatedClock
    factory: object

    @property
    def unlocked(self) -> bool:
        """The relay pin is energised (fail-secure wiring: energised = unlocked)."""
        return bool(self.factory.pin(RELAY).state)

    def advance(self, seconds: float, step: float = 0.5) -> None:
        """Advance the clock in steps, ticking the controller like its main loop."""
        left = seconds
        while left > 1e-9:
            self.clock.advance(min(step, left))
            self.ctl.tick()
            left -= step


def door_rig(tmp_path, key, door: str = "door-1") -> DoorRig:
    """A door trusting ``key`` (the page's door-signing key); its clock starts now."""
    clock = SimulatedClock(start=time.time())
    factory = new_mock_factory()
    wiring = DoorWiring(relay=RelayWiring(RELAY), contact=InputWiring(CONTACT),
                        rex=InputWiring(REX), tamper=InputWiring(TAMPER))
    opts = DoorOptions(store="s0042", door=door, state_path=str(tmp_path / "door.db"),
                       wiring=wiring, timings=DoorTimings())
    ctl = build_door(opts, clock, DoorSeams(sink=lambda _rec: None, pin_factory=factory))
    ctl.p.state.trust_key(key.kid, key.public)
    factory.pin(CONTACT).drive_low()                       # door closed
    return DoorRig(ctl, clock, factory)
