"""The door's part of ``storeedge demo``: a scheduled delivery opens the door, the replayed
code is refused (real DoorApp, real Mosquitto, camera path and pty scanner)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from storeedge.drivers.clock import SystemClock
from storeedge.firmware.common.config import config_from_dict
from storeedge.firmware.common.settings import DeviceConfig
from storeedge.firmware.dock_door.demo import demo_devices


@dataclass
class Ctx:
    broker_url: str
    workdir: str
    store: str = "s0042"
    clock: object = SystemClock()

    def device_config(self, kind, dev_id):
        return config_from_dict({"device": {"id": dev_id, "kind": kind, "store": self.store},
                                 "link": {"url": self.broker_url},
                                 "outbox": {"path": str(Path(self.workdir) / f"{dev_id}.ob")}},
                                DeviceConfig)


def test_demo_delivery_then_replay_refused(tmp_path, broker):
    [door] = demo_devices(Ctx(broker.url, str(tmp_path)), pace=0.2)
    door.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(door.summary()["denials"].values()) < 2:
            time.sleep(0.1)
    finally:
        door.stop()
    s = door.summary()
    assert s["grants"] == 1 and s["checkins"] == 1
    assert s["denials"] == {"used": 1, "expired": 1}
    assert s["relay"] == "locked" and s["state"] == "locked"
    assert s["chain"].startswith("chain ok")
    assert door.decisions[0][1].granted
