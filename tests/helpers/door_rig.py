"""Door test rig: a door on gpiozero MockFactory pins, real SQLite state, simulated clock."""
from __future__ import annotations

from dataclasses import dataclass, field

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.credential import CredentialSpec, generate_signing_key, issue
from storeedge.firmware.dock_door.hardware import DoorWiring, InputWiring, RelayWiring
from storeedge.firmware.dock_door.logic import DoorTimings
from storeedge.firmware.dock_door.runtime import DoorOptions, DoorSeams, build_door
import json
import threading
import yaml
from storeedge.brokerproc import subscribe_acked
from storeedge.firmware.dock_door.main import main
from helpers.stack import device_security, link_for

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


def run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def write_config(tmp_path, pub_line, extra=None, broker_url="mqtt://127.0.0.1:1"):
    doc = {"device": {"id": "door-1", "kind": "dock_door", "store": "s0042"},
           "link": {**link_for(broker_url, "door-1", "dock_door"), "backoff_min_s": 0.1,
                    "backoff_max_s": 1},
           "outbox": {"path": str(tmp_path / "outbox.db")},
           "security": device_security(broker_url, "door-1"),
           "door": {"state_path": str(tmp_path / "door.db"), "gpio_backend": "mock",
                    "rex": {"pin": 22}, "tamper": {"pin": 23}, "trusted_keys": [pub_line]}}
    doc["door"].update(extra or {})
    path = tmp_path / "door.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class Watcher:
    """Subscribes to the door's event topics on the broker."""

    def __init__(self, broker, kit=None):
        self.kit = kit                 # tests/helpers/cmdkit.CommandKit: signs commands
        self.events: list[dict] = []
        self.cond = threading.Condition()
        self.c = broker.client("gw-1", "gateway")   # reads device events, relays commands
        self.c.on_message = self._on_msg
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()
        subscribe_acked(self.c, "se/v1/s0042/dock_door/door-1/evt/#")

    def _on_msg(self, _c, _u, msg):
        with self.cond:
            self.events.append(json.loads(msg.payload))
            self.cond.notify_all()

    def wait(self, pred, timeout=20.0):
        with self.cond:
            return self.cond.wait_for(lambda: any(pred(e) for e in self.events), timeout)

    def command(self, name, args):
        payload = self.kit.sign("dock_door", "door-1", name, args, by="test", role="manager")
        self.c.publish(f"se/v1/s0042/dock_door/door-1/cmd/{name}", payload,
                       qos=1).wait_for_publish()

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()
