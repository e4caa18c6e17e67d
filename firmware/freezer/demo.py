"""The freezer monitors in ``storeedge demo``: three simulated cabinets on simulated 1-Wire buses.

* ``fz-1`` ice cream freezer: healthy (two probes).
* ``fz-2`` frozen food freezer: its bottom probe starts returning the 85 degC power-on value
  after a few seconds -> a *sensor fault* alarm, never a temperature alarm.
* ``fz-3`` dairy chiller: door left ajar and the compressor tripped -> it warms up -> a
  *temperature* alarm (H).

Each runs the real app as ``storeedge freezer`` does (the runner's AppRunner: DeviceService
with its outbox and MQTT link, then ``wiring.build``: FreezerApp, HACCP book, the simulated
1-Wire bus of ``wiring.make_bus``) with real-format ``w1_slave`` files under
``<workdir>/<dev>-w1``.  The cabinet physics runs
60x faster than the clock (``PHYSICS_SPEED``) so a warm-up shows within a demo's seconds; the
app itself, its timestamps and delays run on the real clock.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import NamedTuple

from storeedge import apps
from storeedge.drivers.onewire import Fault
from storeedge.config import config_from_dict, config_to_dict
from storeedge.firmware.common.runner import AppRunner
from storeedge.firmware.freezer.config import FreezerConfig, build_rules
from storeedge.firmware.freezer.wiring import make_bus

log = logging.getLogger(__name__)
PHYSICS_SPEED = 60.0
FAULT_AFTER_S = 5.0
FAST = {"interval_s": 10, "fast_interval_s": 10}


class ScaledClock:
    """The demo's physics time: runs ``speed`` times faster than ``base`` (from now on)."""

    def __init__(self, base, speed: float):
        self.base, self.speed = base, speed
        self._t0, self._m0 = base.time(), base.monotonic()

    def time(self) -> float:
        return self._t0 + (self.base.time() - self._t0) * self.speed

    def monotonic(self) -> float:
        return self._m0 + (self.base.monotonic() - self._m0) * self.speed

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds / self.speed)


def _limits(high_c: float, low_c: float) -> dict:
    quick = {"delay_s": 0, "window_s": 10, "mode": "all", "deadband_c": 1.0}   # seconds count
    return {"H": {"limit_c": high_c, **quick}, "L": {"limit_c": low_c, **quick}}


class Scenario(NamedTuple):
    """One demo cabinet: what it is, its probes (name -> ROM), limits and what happens."""

    title: str
    kind: str
    roms: dict
    limits: dict
    event: str | None


SCENARIOS = {
    "fz-1": Scenario("ice cream freezer", "frozen",
                     {"top": "28-00000d3e0101", "bottom": "28-00000d3e0102"},
                     _limits(-15.0, -30.0), None),
    "fz-2": Scenario("frozen food freezer", "frozen",
                     {"top": "28-00000d3e0201", "bottom": "28-00000d3e0202"},
                     _limits(-15.0, -30.0), "probe_fault"),
    "fz-3": Scenario("dairy chiller", "chilled", {"shelf": "28-00000d3e0301"},
                     _limits(6.0, -1.0), "door_ajar"),
}


def freezer_demo_config(ctx, dev_id: str) -> FreezerConfig:
    """The demo config of ``dev_id``: the context's common sections + a freezer section."""
    sc = SCENARIOS[dev_id]
    data = config_to_dict(ctx.device_config("freezer", dev_id))
    data["freezer"] = {
        "onewire": {"backend": "sim", "root": os.path.join(ctx.workdir, f"{dev_id}-w1")},
        "units": {"cabinet": {"kind": sc.kind, "probes": list(sc.roms)}},
        "probes": {name: {"rom": rom, "limits": sc.limits, **FAST}
                   for name, rom in sc.roms.items()},
        "alarms": {"fault_after_reads": 1, "silent_after_s": 60, "repeat_s": 60,
                   "state_path": os.path.join(ctx.workdir, f"{dev_id}-alarms.json")},
        "haccp": {"path": os.path.join(ctx.workdir, f"{dev_id}-haccp.jsonl")},
        "telemetry_batch_s": 10,
    }
    return config_from_dict(data, FreezerConfig)


@dataclass
class FreezerDemo:
    """One demo freezer (``name``, ``start()``, ``stop()``, ``summary()``)."""

    ctx: object
    dev_id: str
    name: str = ""
    _threads: list = field(default_factory=list)

    def __post_init__(self):
        sc = SCENARIOS[self.dev_id]
        self.event = sc.event
        self.name = f"{self.dev_id} ({sc.title})"
        self.cfg = freezer_demo_config(self.ctx, self.dev_id)
        self.rules = build_rules(self.cfg.freezer)
        self.bus = make_bus(self.cfg.freezer, self.rules,
                            ScaledClock(self.ctx.clock, PHYSICS_SPEED))
        self.model = self.bus.probe(next(iter(sc.roms.values()))).model   # the one cabinet
        self.runner = AppRunner(apps.app("freezer"), self.cfg, self.ctx.clock,
                                parts={"bus": self.bus, "max_sleep_s": 0.5})
        self.app = self.runner.build().app

    def start(self) -> None:
        if self.event == "door_ajar":
            self.model.door_open = self.model.compressor_failed = True
        self.runner.start()
        if self.event == "probe_fault":
            rom = self.rules.probes["bottom"].rom
            timer = threading.Timer(FAULT_AFTER_S, self.bus.inject, (rom, Fault.POWER_ON))
            timer.daemon = True
            timer.start()
            self._threads.append(timer)

    def stop(self) -> None:
        for t in self._threads:
            t.cancel()
            t.join(5)
        self.runner.stop()          # the app closes the bus (its files; the folder stays)

    def summary(self) -> dict:
        """Probe readings/faults and the alarms raised (kind, condition, probe)."""
        every = list(self.app.engine.history) + self.app.alarms()
        return {"probes": {s.name: (round(s.temp_c, 2) if s.temp_c is not None else s.fault)
                           for s in self.app.probes()},
                "alarms": sorted({f"{a.kind}:{a.condition}@{a.probe}" for a in every}),
                "open_alarms": [a.id for a in self.app.alarms()]}


def demo_devices(ctx) -> list:
    """The demo's freezers: one healthy, one whose probe fails, one that warms up."""
    return [FreezerDemo(ctx, dev_id) for dev_id in SCENARIOS]
