"""The freezers' part of ``storeedge demo`` (real DeviceService + Mosquitto, real time)."""
from __future__ import annotations

import time

from storeedge.firmware.demo import DemoContext
from storeedge.firmware.freezer.demo import demo_devices


def test_demo_one_fault_one_warm_up_one_healthy(tmp_path, broker):
    fz1, fz2, fz3 = demo_devices(DemoContext(broker.url, "s0042", str(tmp_path)))
    for d in (fz1, fz2, fz3):
        d.start()
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not (fz2.summary()["alarms"]
                                                   and fz3.summary()["alarms"]):
            time.sleep(0.5)
    finally:
        for d in (fz1, fz2, fz3):
            d.stop()
    assert fz1.summary()["alarms"] == []
    assert fz2.summary()["alarms"] == ["sensor_fault:power_on_85c@bottom"]
    assert fz2.summary()["probes"]["bottom"] == "power_on_85c"
    assert fz3.summary()["alarms"] == ["temperature:H@shelf"]
    assert (tmp_path / "fz-3-w1" / "28-00000d3e0301" / "w1_slave").read_text().count("\n") == 2
