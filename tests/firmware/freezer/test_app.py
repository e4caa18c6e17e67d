"""The freezer app end to end in one process: simulated bus + clock, gpiozero mock door pin."""
from __future__ import annotations

import datetime as dt

import pytest

from storeedge.drivers.onewire import Fault
from storeedge.firmware.freezer.exc import AckError, UnknownAlarm

from helpers.freezer_rig import ROMS
from helpers.freezer_rig import Rig


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.bus.close()
    r.pins.close()


def test_quiet_freezer_sends_readings_and_no_alarm(rig):
    from storeedge.firmware.freezer.events import FreezerReadings
    rig.run(3600)
    assert rig.alarms() == []
    batches = rig.sink.of(FreezerReadings, probe="top")
    assert len(batches) >= 10
    assert all(-23 < b.mean_c < -17 and b.faults == 0 for b, _ in batches)
    assert sum(b.n for b, _ in batches) >= 55          # one read a minute


def test_failed_compressor_alarms_with_priority_0_and_true_time(rig):
    from storeedge.firmware.freezer.events import FreezerAlarm
    rig.run(600)
    rig.model("top").compressor_failed = True           # same cabinet: both ice1 probes
    rig.run(4 * 3600)
    raised = rig.alarms(action="raised", kind="temperature", probe="top")
    assert [b.condition for b, _ in raised] == ["H"]     # HH (-10) takes ~8 h
    h, ts = raised[0]
    assert FreezerAlarm.EVENT_PRIO == 0 and h.value_c > -15 and h.limit_c == -15
    assert h.raised_at.startswith(dt.datetime.fromtimestamp(ts, dt.timezone.utc)
                                  .strftime("%Y-%m-%dT%H:%M:%S"))
    esc = rig.alarms(action="escalated", probe="top", condition="H")
    assert [b.notify for b, _ in esc][:2] == ["manager", "district"]


def test_sampling_speeds_up_while_a_condition_is_pending(rig):
    from storeedge.firmware.freezer.events import FreezerReadings
    rig.model("top").compressor_failed = True
    rig.run(3 * 3600)
    gaps = []
    for b, _ in rig.sink.of(FreezerReadings, probe="top"):
        gaps += [round(y - x) for x, y in zip(b.offsets_s, b.offsets_s[1:])]
    assert 60 in gaps and 15 in gaps


def test_broken_probe_raises_sensor_fault_never_temperature(rig):
    from storeedge.firmware.freezer.events import FreezerReadings
    rig.run(300)
    rig.bus.inject(ROMS["bottom"], Fault.POWER_ON)       # 85 degC, forever
    rig.run(3600)
    kinds = {(b.kind, b.condition) for b, _ in rig.alarms(probe="bottom")}
    assert kinds == {("sensor_fault", "power_on_85c")}
    batches = rig.sink.of(FreezerReadings, probe="bottom")
    assert batches[-1][0].faults_seen == ["power_on_85c"] and batches[-1][0].max_c is None
    rig.bus.clear(ROMS["bottom"])
    rig.run(120)
    assert ("cleared", "sensor_fault") in {(b.action, b.kind)
                                           for b, _ in rig.alarms(probe="bottom")}


def test_vanished_probe_goes_silent(rig):
    rig.run(120)
    rig.bus.vanish(ROMS["dairy"])
    rig.run(900)
    (silent,) = rig.alarms(action="raised", probe="dairy")
    assert silent[0].kind == "sensor_silent" and "not on the bus" in silent[0].detail


def test_stale_probe_is_a_sensor_fault(tmp_path):
    def quick_stale(d):
        d["freezer"]["onewire"]["stale_after_s"] = 300
    r = Rig(tmp_path, edit=quick_stale)
    r.run(120)
    r.bus.inject(ROMS["dairy"], Fault.STALE)
    r.run(900)
    raised = r.alarms(action="raised", probe="dairy")
    assert [(b.kind, b.condition) for b, _ in raised] == [("sensor_fault",
                                                          "stale_repeated_sample")]
    r.bus.close()


def test_door_contact_suppresses_restocking_but_not_a_door_left_open(rig):
    from storeedge.firmware.freezer.events import FreezerDoor
    rig.run(600)
    pin = rig.pins.pin(17)
    pin.drive_high()                                    # reed contact opens: door open
    rig.model("top").door_open = True
    rig.run(240)
    pin.drive_low()
    rig.model("top").door_open = False
    rig.run(1800)
    assert [b.open for b, _ in rig.sink.of(FreezerDoor)] == [True, False]
    assert rig.alarms(kind="temperature") == []
    pin.drive_high()                                    # now left open
    rig.model("top").door_open = True
    opened = rig.clock.time()
    rig.run(1800)
    raised = rig.alarms(action="raised", kind="temperature", unit="ice1")
    assert raised and min(ts for _, ts in raised) >= opened + 900     # the door cap


def test_ack_from_console_and_command(rig):
    from storeedge.firmware.common.service import Command
    rig.model("top").compressor_failed = True
    rig.run(3 * 3600)
    open_ids = [a.id for a in rig.app.alarms()]
    assert open_ids
    with pytest.raises(UnknownAlarm):
        rig.app.ack("nope", "JD", "x")
    with pytest.raises(AckError):
        rig.app.ack(open_ids[0], "JD", "  ")
    a = rig.app.ack(open_ids[0], "JD", "stock moved to ice2; service called")
    assert a.acked_by == "JD"
    res = rig.app.handle_ack_command(Command("ack", {"alarm": open_ids[1], "note": "same"},
                                             "console:jd", "c1"))
    assert res == {"alarm": open_ids[1], "acked_by": "console:jd"}
    acks = rig.alarms(action="acked")
    assert [b.ack_note for b, _ in acks] == ["stock moved to ice2; service called", "same"]


def test_test_sensors_lists_rom_ids_readings_and_faults(rig):
    rig.bus.inject(ROMS["dairy"], Fault.CRC)
    status = {s.name: s for s in rig.app.test_sensors()}
    assert status["top"].rom == ROMS["top"] and -23 < status["top"].temp_c < -17
    assert status["dairy"].fault == "empty_read"           # new kernel: CRC -> empty read
    assert status["dairy"].temp_c is None and status["dairy"].last_good_ts is None


def _at(hour, minute=0):
    return dt.datetime(2026, 11, 24, hour, minute, tzinfo=dt.timezone.utc).timestamp()


def test_haccp_checks_pass_then_fail_with_corrective_action(tmp_path):
    morning = Rig(tmp_path, start=_at(5, 50))
    morning.run(20 * 60)                                # through 06:00
    recs = morning.app.haccp_records()
    assert [(x.unit, x.result) for x in recs] == [("ice1", "pass"), ("dairy", "pass")]
    assert recs[0].value_c <= -18 and recs[0].id == "ice1-20261124-0600"
    morning.bus.close()
    # the device restarts at 17:30 (same record file) and finds ice1 warm
    r = Rig(tmp_path, start=_at(17, 30))
    cab = r.model("top")
    cab.air_c = cab.product_c = cab.probe_c = -12.0
    cab.compressor_failed = True
    r.run(40 * 60)                                      # through 18:00
    assert len(r.app.haccp_records()) == 4              # the morning ones were kept
    ice = [x for x in r.app.haccp_records(since=_at(17)) if x.unit == "ice1"][0]
    assert ice.result == "fail" and ice.value_c > -18 and ice.needs_action
    alarm = next(a for a in r.app.alarms() if a.unit == "ice1")
    r.app.ack(alarm.id, "JD", "product moved to ice2")
    ice = [x for x in r.app.haccp_records(since=_at(17)) if x.unit == "ice1"][0]
    assert ice.initials == "JD" and ice.action.startswith("product moved to ice2")
    r.bus.close()


def test_haccp_missed_check_after_downtime(tmp_path):
    r = Rig(tmp_path, start=_at(5, 50))
    r.run(15 * 60)
    r.bus.close()
    later = Rig(tmp_path, start=_at(19, 0))             # off from 06:05 to 19:00
    later.run(60)
    evening = later.app.haccp_records(since=_at(17))
    assert {(x.unit, x.result) for x in evening} == {("ice1", "missed"), ("dairy", "missed")}
    later.bus.close()


def test_open_alarms_survive_a_restart(tmp_path):
    r = Rig(tmp_path)
    r.model("top").compressor_failed = True
    r.run(2 * 3600)
    before = {a.id: a for a in r.app.alarms()}
    assert before and all(not a.acked for a in before.values())
    r.bus.close()
    again = Rig(tmp_path, start=r.clock.time() + 60)       # reboot a minute later
    assert {a.id for a in again.app.alarms()} == set(before)
    again.model("top").air_c = again.model("top").probe_c = -12.0   # still warm
    again.model("top").compressor_failed = True
    again.run(1800)
    assert again.alarms(action="raised", kind="temperature") == []   # same alarms, no new ids
    assert again.alarms(action="escalated")                          # ... still escalating
    some = sorted(before)[0]
    again.app.ack(some, "JD", "called service")
    third = Rig(tmp_path, start=again.clock.time() + 60)
    assert third.app.engine.get(some).acked_by == "JD"
    again.bus.close()
    third.bus.close()


def test_unreadable_alarm_file_is_reported_not_fatal(tmp_path, caplog):
    (tmp_path / "alarms.json").write_text("{not json")
    r = Rig(tmp_path)
    assert r.app.alarms() == [] and "unreadable" in caplog.text
    r.bus.close()


def test_haccp_uses_the_last_trusted_reading_through_a_bad_read(tmp_path):
    r = Rig(tmp_path, start=_at(5, 50))
    r.run(9 * 60 + 30)                                  # 05:59:30, probes read at 05:59:xx
    r.bus.inject(ROMS["dairy"], Fault.CRC)              # every read from now on fails
    r.run(60)
    dairy = [x for x in r.app.haccp_records() if x.unit == "dairy"][0]
    assert dairy.result == "pass" and dairy.probes["dairy"] is not None
    r.bus.close()


def test_alarm_events_wait_in_memory_while_the_outbox_is_full(rig):
    from storeedge.exc import OutboxFull
    from storeedge.firmware.freezer.events import FreezerAlarm

    full = {"on": True}
    real_emit = rig.sink.emit

    def emit(body, ts=None):
        if full["on"] and isinstance(body, FreezerAlarm):
            raise OutboxFull("outbox full (test)")
        real_emit(body, ts)
    rig.sink.emit = emit
    rig.model("top").compressor_failed = True
    rig.run(2 * 3600)
    assert rig.alarms() == [] and rig.app.emit_failures > 0
    full["on"] = False
    rig.run(10)
    raised = rig.alarms(action="raised")
    assert raised and raised[0][1] < rig.clock.time() - 600    # kept its true time


def test_a_failing_pass_is_logged_and_stops_the_heartbeat(rig, caplog):
    import threading
    stop, calls, beats = threading.Event(), [], []
    rig.sink.heartbeat = lambda: beats.append(1)

    def broken_step():
        calls.append(1)
        if len(calls) >= 3:
            stop.set()
        raise RuntimeError("bug")
    rig.app.step = broken_step
    rig.app.run(stop, max_sleep_s=0.01)
    assert rig.app.step_errors == 3 and beats == []
    assert "freezer pass failed (3 so far)" in caplog.text
