"""The door's part of ``storeedge demo``: a scheduled delivery opens the door, the replayed
code is refused (real DoorApp, real Mosquitto, camera path and pty scanner)."""
from __future__ import annotations

import time

from storeedge.firmware.demo import DemoContext
from storeedge.firmware.dock_door.demo import demo_devices


def test_demo_delivery_then_replay_refused(tmp_path, broker):
    [door] = demo_devices(DemoContext(broker.url, "s0042", str(tmp_path)), pace=0.2)
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
