"""Alarm engine, driven by readings with their own timestamps (no real time passes)."""
from __future__ import annotations

import datetime as dt

import pytest

from storeedge.firmware.freezer.alarms import AlarmEngine
from storeedge.firmware.freezer.exc import AckError, UnknownAlarm
from storeedge.firmware.freezer.rules import (AlarmPolicy, Condition, FreezerRules, ProbeRules,
                                              Suppression, UnitRules)

T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone.utc).timestamp()


def make_rules(conditions, suppression=Suppression(), policy=AlarmPolicy()):
    probe = ProbeRules("p1", "28-0000a1b2c3d4", "fz1", tuple(conditions))
    unit = UnitRules("fz1", "frozen", -18.0, ("p1",), suppression)
    return FreezerRules({"fz1": unit}, {"p1": probe}, policy)


def feed(engine, values, start=T0, step=60.0, probe="p1"):
    """Feed one reading per ``step`` s; returns all notices (with tick after each reading)."""
    out = []
    for i, v in enumerate(values):
        ts = start + i * step
        out += engine.observe(probe, ts, v)
        out += engine.tick(ts)
    return out


def raised(notices, kind=None):
    return [n for n in notices if n.action == "raised" and (kind is None or n.alarm.kind == kind)]


def test_delay_is_honoured_to_the_reading():
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=600, window_s=120,
                                            mode="all")]), T0)
    # reading 0 at -20, then -12 from t=60 on: the window (all) holds from t=120 s
    notices = feed(eng, [-20.0] + [-12.0] * 13)
    first = raised(notices)
    assert len(first) == 1
    assert first[0].ts == T0 + 120 + 600          # held for exactly delay_s
    assert first[0].alarm.condition == "H" and first[0].alarm.kind == "temperature"


def test_short_excursion_under_the_delay_never_alarms():
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=600, window_s=60,
                                            mode="all")]), T0)
    notices = feed(eng, [-20.0] * 3 + [-10.0] * 9 + [-20.0] * 20)   # 9 minutes warm
    assert raised(notices) == []


def test_average_window_smooths_a_single_spike():
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=0, window_s=600,
                                            mode="average")]), T0)
    assert raised(feed(eng, [-20.0] * 10 + [-5.0] + [-20.0] * 10)) == []
    eng2 = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=0, window_s=600,
                                             mode="any")]), T0)
    assert len(raised(feed(eng2, [-20.0] * 10 + [-5.0] + [-20.0] * 10))) == 1


@pytest.mark.parametrize("deadband,expected_raises", [(1.0, 1), (0.0, 4)])
def test_deadband_prevents_chattering(deadband, expected_raises):
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=0, window_s=1,
                                            mode="average", deadband_c=deadband)]), T0)
    hover = [-14.8, -15.2, -14.7, -15.3, -14.9, -15.4, -14.6, -15.1]
    notices = feed(eng, hover)
    assert len(raised(notices)) == expected_raises
    if deadband:
        assert [n.action for n in notices] == ["raised"]
        assert [n.action for n in feed(eng, [-16.5], start=T0 + 600)] == ["cleared"]


def test_escalation_repeats_until_acknowledged():
    policy = AlarmPolicy(repeat_s=600, escalation=("store", "manager", "district"))
    eng = AlarmEngine(make_rules([Condition("HH", -10.0, delay_s=0, window_s=1)],
                                 policy=policy), T0)
    notices = feed(eng, [-5.0] * 40)                # 40 minutes warm, nobody acks
    esc = [n for n in notices if n.action == "escalated"]
    assert [n.notify for n in esc] == ["manager", "district", "district"]
    assert [n.alarm.escalation for n in esc] == [1, 2, 3]
    assert [n.ts - T0 for n in esc] == [600, 1200, 1800]
    alarm_id = raised(notices)[0].alarm.id
    ack = eng.ack(alarm_id, "JD", "moved stock to freezer 2, called service", T0 + 2400)
    assert ack.action == "acked" and ack.alarm.acked_by == "JD"
    later = feed(eng, [-5.0] * 30, start=T0 + 2460)
    assert [n for n in later if n.action == "escalated"] == []
    assert eng.open_alarms()[0].id == alarm_id      # acked but still warm: stays open
    cleared = feed(eng, [-25.0], start=T0 + 6000)
    assert [n.action for n in cleared] == ["cleared"]
    assert eng.open_alarms() == [] and eng.get(alarm_id).ack_note.startswith("moved")


def test_cleared_alarm_stops_repeating_but_waits_for_ack():
    eng = AlarmEngine(make_rules([Condition("HH", -10.0, delay_s=0, window_s=1)],
                                 policy=AlarmPolicy(repeat_s=300)), T0)
    notices = feed(eng, [-5.0, -25.0] + [-25.0] * 20)
    assert [n.action for n in notices] == ["raised", "cleared"]
    (alarm,) = eng.open_alarms()
    assert not alarm.active and not alarm.acked
    eng.ack(alarm.id, "JD", "door was left open; closed it", T0 + 3000)
    assert eng.open_alarms() == []


def test_ack_needs_a_known_alarm_initials_and_a_note():
    eng = AlarmEngine(make_rules([Condition("HH", -10.0, delay_s=0, window_s=1)]), T0)
    alarm_id = raised(feed(eng, [-5.0]))[0].alarm.id
    with pytest.raises(UnknownAlarm, match="open alarms: " + alarm_id):
        eng.ack("p9-hh-1", "JD", "x", T0)
    with pytest.raises(AckError, match="who"):
        eng.ack(alarm_id, " ", "note", T0)
    with pytest.raises(AckError, match="corrective action"):
        eng.ack(alarm_id, "JD", "", T0)
    eng.ack(alarm_id, "JD", "checked", T0)
    with pytest.raises(AckError, match="already acknowledged by JD"):
        eng.ack(alarm_id, "AB", "again", T0)


def _defrost_rules(cap_s):
    start = dt.datetime.fromtimestamp(T0, dt.timezone.utc).strftime("%H:%M")
    sup = Suppression(defrost_starts=(start,), defrost_s=1800, recovery_s=1200,
                      defrost_cap_s=cap_s)
    return make_rules([Condition("H", -15.0, delay_s=300, window_s=60, mode="all")], sup)


def test_normal_defrost_is_suppressed():
    eng = AlarmEngine(_defrost_rules(cap_s=3600), T0)
    # 20 min heating to -5, then 25 min of recovery back under -15
    temps = [-20 + i * 0.75 for i in range(20)] + [-5 - i * 0.6 for i in range(25)] + [-20] * 30
    assert raised(feed(eng, temps)) == []


def test_defrost_suppression_ends_at_its_cap():
    eng = AlarmEngine(_defrost_rules(cap_s=2400), T0)
    notices = feed(eng, [-5.0] * 90)               # heater stuck: warm for 90 minutes
    (first,) = raised(notices)
    assert first.ts == T0 + 2400                    # cap (2400 s) < defrost + recovery (3000 s)
    assert "for 2400 s" in first.alarm.detail or "for 2340 s" in first.alarm.detail


def _door_rules():
    sup = Suppression(door_grace_s=300, door_cap_s=900)
    return make_rules([Condition("H", -15.0, delay_s=120, window_s=60, mode="all"),
                       Condition("L", -30.0, delay_s=0, window_s=1)], sup)


def test_door_opening_with_quick_recovery_is_suppressed():
    eng = AlarmEngine(_door_rules(), T0)
    eng.door("fz1", True, T0)
    notices = feed(eng, [-8.0] * 3)                 # 3 min restocking
    eng.door("fz1", False, T0 + 180)
    notices += feed(eng, [-9, -12, -14, -16, -19, -20, -20], start=T0 + 180)
    assert raised(notices) == []


def test_door_left_open_alarms_at_the_hard_cap():
    eng = AlarmEngine(_door_rules(), T0)
    eng.door("fz1", True, T0)
    (first,) = raised(feed(eng, [-6.0] * 30))
    assert first.ts == T0 + 900


def test_door_never_suppresses_low_alarms():
    eng = AlarmEngine(_door_rules(), T0)
    eng.door("fz1", True, T0)
    (first,) = raised(feed(eng, [-31.0]))
    assert first.alarm.condition == "L" and first.ts == T0


def test_faulty_probe_raises_a_sensor_fault_and_never_a_temperature_alarm():
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=0, window_s=1)],
                                 policy=AlarmPolicy(fault_after_reads=3)), T0)
    notices = []
    for i in range(20):
        notices += eng.observe("p1", T0 + 60 * i, None, "power_on_85c", "85.000 degC ...")
        notices += eng.tick(T0 + 60 * i)
    assert {n.alarm.kind for n in notices} == {"sensor_fault"}     # never "temperature"
    assert [n.action for n in notices] == ["raised", "escalated"]  # repeats until acked
    assert notices[0].ts == T0 + 120 and notices[0].alarm.condition == "power_on_85c"
    back = eng.observe("p1", T0 + 1500, -20.0)
    assert [(n.action, n.alarm.kind) for n in back] == [("cleared", "sensor_fault")]


def test_missing_probe_goes_silent_at_its_true_time():
    eng = AlarmEngine(make_rules([Condition("H", -15.0)],
                                 policy=AlarmPolicy(silent_after_s=600)), T0)
    eng.observe("p1", T0, -20.0)
    notices = []
    for i in range(1, 20):
        notices += eng.observe("p1", T0 + 60 * i, None, "probe_missing", "gone")
        notices += eng.tick(T0 + 60 * i)
    (silent,) = notices
    assert silent.alarm.kind == "sensor_silent" and silent.ts == T0 + 600
    assert "gone" in silent.alarm.detail


def test_buffered_readings_are_alarmed_with_their_own_time():
    """Readings taken during an outage and judged later keep their timestamps."""
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=300, window_s=60,
                                            mode="all")]), T0)
    backlog = [(T0 + 60 * i, -20.0 + i) for i in range(20)]   # warming 1 degC/min
    notices = []
    for ts, v in backlog:                          # judged all at once, hours later
        notices += eng.observe("p1", ts, v)
    (first,) = raised(notices)
    assert first.ts == T0 + 60 * 6 + 300            # -14 at minute 6, +300 s of delay


def test_wall_clock_stepped_back_restarts_the_window_and_keeps_alarming():
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=300, window_s=300,
                                            mode="all")]), T0)
    notices = feed(eng, [-20.0] * 5 + [-10.0] * 4)          # pending, not yet alarmed
    assert raised(notices) == []
    back = T0 + 9 * 60 - 3600                                # NTP steps the clock back 1 h
    notices = feed(eng, [-10.0] * 12, start=back)
    (first,) = raised(notices)                               # not ignored for an hour ...
    assert first.ts == back + 300                            # ... the delay restarted
    esc = [n for n in feed(eng, [-10.0] * 20, start=back + 720) if n.action == "escalated"]
    assert esc                                               # repeats continue too


def test_busy_while_pending():
    eng = AlarmEngine(make_rules([Condition("H", -15.0, delay_s=600, window_s=60,
                                            mode="all")]), T0)
    feed(eng, [-20.0])
    assert not eng.busy("p1")
    eng.observe("p1", T0 + 60, -10.0)
    assert eng.busy("p1")
