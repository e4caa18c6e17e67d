"""Helpers shared by the freezer tests (config builders)."""
from __future__ import annotations

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.config import config_from_dict
from storeedge.firmware.freezer.app import FreezerApp
from storeedge.firmware.freezer.config import FreezerConfig, build_rules, storage_of
from storeedge.firmware.freezer.wiring import door_inputs, make_bus


ROMS = {"top": "28-00000a1b2c01", "bottom": "28-00000a1b2c02", "dairy": "28-00000a1b2c03"}


def freezer_config_dict(tmp_path) -> dict:
    """A complete freezer device config: a freezer (2 probes, door on GPIO 17), a chiller."""
    high = {"limit_c": -15.0, "delay_s": 600, "window_s": 600, "mode": "average"}
    return {
        "device": {"id": "fz-1", "kind": "freezer", "store": "s0042"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "security": {"insecure": True},          # the default plain link (no broker here)
        "freezer": {
            "onewire": {"backend": "sim", "root": str(tmp_path / "w1")},
            "haccp": {"path": str(tmp_path / "haccp.jsonl"), "checks": ["06:00", "18:00"]},
            "alarms": {"repeat_s": 900, "fault_after_reads": 3, "silent_after_s": 600,
                       "state_path": str(tmp_path / "alarms.json")},
            "telemetry_batch_s": 300,
            "units": {
                "ice1": {"kind": "frozen", "probes": ["top", "bottom"],
                         "door": {"pin": 17, "grace_s": 300, "cap_s": 900}},
                "dairy": {"kind": "chilled", "probes": ["dairy"]},
            },
            "probes": {
                "top": {"rom": ROMS["top"], "limits": {
                    "H": high, "HH": {"limit_c": -10.0, "delay_s": 300, "window_s": 300,
                                      "mode": "all"}}},
                "bottom": {"rom": ROMS["bottom"], "limits": {"H": high}},
                "dairy": {"rom": ROMS["dairy"], "limits": {
                    "L": {"limit_c": -1.0, "delay_s": 600, "window_s": 600},
                    "H": {"limit_c": 6.0, "delay_s": 600, "window_s": 600}}},
            },
        },
    }


class Rig:
    def __init__(self, tmp_path, start=None, edit=None):
        data = freezer_config_dict(tmp_path)
        if edit:
            edit(data)
        self.cfg = config_from_dict(data, FreezerConfig)
        self.rules = build_rules(self.cfg.freezer)
        self.clock = SimulatedClock(start) if start else SimulatedClock()
        self.bus = make_bus(self.cfg.freezer, self.rules, self.clock)
        self.pins = new_mock_factory()
        self.sink = ListSink()
        self.app = FreezerApp(self.rules, self.bus, self.sink, self.clock,
                              storage_of(self.cfg.freezer),
                              doors=door_inputs(self.cfg.freezer, self.pins))

    def model(self, probe):
        return self.bus.probe(ROMS[probe]).model

    def run(self, seconds, step=5.0):
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            self.app.step()
            self.clock.advance(step)
        self.app.step()

    def alarms(self, **match):
        from storeedge.firmware.freezer.events import FreezerAlarm
        return self.sink.of(FreezerAlarm, **match)


class ListSink:
    """Records what the app emits (the delivery path is tested with DeviceService in
    test_delivery.py)."""

    def __init__(self):
        self.events = []
        self.heartbeats = 0

    def emit(self, body, ts=None):
        self.events.append((body, ts))

    def heartbeat(self):
        self.heartbeats += 1

    def of(self, cls, **match):
        return [(b, ts) for b, ts in self.events if isinstance(b, cls)
                and all(getattr(b, k) == v for k, v in match.items())]
