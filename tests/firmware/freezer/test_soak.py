"""Does it cry wolf?  A healthy freezer with defrosts, restocking and the odd bad read must not
alarm; the same freezer with a failed compressor must.  Simulated clock, seeded randomness."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from helpers.freezer_rig import ROMS
from storeedge.drivers.onewire import Fault
from helpers.freezer_rig import Rig

START = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.timezone.utc).timestamp()


def realistic(d):
    fz = d["freezer"]
    fz["units"]["ice1"]["defrost"] = {"starts": ["01:00", "07:00", "13:00", "19:00"],
                                      "duration_s": 1200, "recovery_s": 1800, "cap_s": 3600}
    for p in ("top", "bottom"):
        fz["probes"][p]["limits"]["H"].update(window_s=900, delay_s=900)


def day_plan(rng, day_start):
    """Restocking door openings between 08:00 and 20:00: (open_ts, seconds open)."""
    t, plan = day_start + 8 * 3600, []
    while t < day_start + 20 * 3600:
        t += rng.uniform(1800, 7200)
        plan.append((t, rng.uniform(60, 240)))
    return plan


def soak(rig, days, seed=7, step=15.0):
    rng = random.Random(seed)
    cab, pin = rig.model("top"), rig.pins.pin(17)
    cab.physics.defrost_starts_utc = ("01:00", "07:00", "13:00", "19:00")
    for day in range(days):
        for open_ts, secs in day_plan(rng, START + day * 86400):
            rig.run(max(0.0, open_ts - rig.clock.time()), step)
            pin.drive_high()
            cab.door_open = True
            rig.run(secs, step)
            pin.drive_low()
            cab.door_open = False
            if rng.random() < 0.5:                      # the odd bad read
                rig.bus.inject(ROMS[rng.choice(list(ROMS))], rng.choice(
                    [Fault.CRC, Fault.POWER_ON, Fault.EMPTY]), reads=1)
        rig.run(START + (day + 1) * 86400 - rig.clock.time(), step)


def run_soak(tmp_path, days):
    rig = Rig(tmp_path, start=START, edit=realistic)
    try:
        soak(rig, days)
        assert rig.alarms() == [], [b.alarm_id for b, _ in rig.alarms()]
        temps = [b.max_c for b, _ in rig.sink.of(__import__(
            "storeedge.firmware.freezer.events", fromlist=["FreezerReadings"]).FreezerReadings,
            probe="top") if b.max_c is not None]
        assert max(temps) > -15          # defrosts and door openings did warm it up
        rig.model("top").compressor_failed = True
        rig.run(3 * 3600, 15.0)
        assert {b.condition for b, _ in rig.alarms(action="raised", unit="ice1")} == {"H"}
        assert [r.result for r in rig.app.haccp_records() if r.unit == "ice1"][:2 * days] \
            == ["pass"] * 2 * days
    finally:
        rig.bus.close()


def test_one_day_no_false_alarm(tmp_path):
    run_soak(tmp_path, 1)


@pytest.mark.slow
def test_a_week_no_false_alarm(tmp_path):
    run_soak(tmp_path, 7)
