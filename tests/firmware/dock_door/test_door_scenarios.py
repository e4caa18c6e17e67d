"""Forced-open, held-open, REX, tamper, lockout, jammed and check-in on mock pins with the
simulated clock.  The relay state is always read from the mock pin, not from the logic."""
from __future__ import annotations

from storeedge.firmware.dock_door.logic import DoorTimings
from storeedge.firmware.dock_door.verify import Reason

from helpers.door_rig import MONITOR, RELAY, T0, make_rig


def states(rig):
    return [r.body["state"] for r in rig.records if r.type == "door.state"]


def test_grant_open_close_relocks_and_writes_checkin(tmp_path):
    rig = make_rig(tmp_path, probe=lambda: -17.5)
    d = rig.ctl.present(rig.issue())
    assert rig.unlocked
    rig.advance(3)
    rig.open_door()
    assert rig.ctl.status().state == "open"
    rig.advance(20)                                    # unloading; relay relocked at 10 s
    assert not rig.unlocked
    assert "door.forced_open" not in rig.types() and "door.held_open" not in rig.types()
    rig.close_door()
    assert not rig.unlocked and rig.ctl.status().state == "locked"
    assert states(rig) == ["unlocked", "open", "locked"]
    ci = rig.last("door.checkin").body
    assert ci["cred_id"] == d.credential.cred_hex and ci["outcome"] == "closed"
    assert ci["arrived"] == T0 and ci["opened_at"] == T0 + 3 and ci["closed_at"] == T0 + 23
    assert ci["on_time"] is True and ci["probe_c"] == -17.5
    assert ci["window_start"] == T0 - 600 and ci["po"] == "PO-12345"


def test_relock_on_close_before_unlock_time(rig):
    rig.ctl.present(rig.issue())
    rig.advance(1)
    rig.open_door()
    rig.advance(1)
    assert rig.unlocked
    rig.close_door()
    assert not rig.unlocked


def test_unused_grant_relocks_after_unlock_time(rig):
    rig.ctl.present(rig.issue())
    rig.advance(9.5)
    assert rig.unlocked
    rig.advance(1)
    assert not rig.unlocked
    assert rig.last("door.checkin").body["outcome"] == "not_opened"
    assert rig.last("door.checkin").body["opened_at"] is None
    rig.open_door()                                    # opening after relock is forced
    assert "door.forced_open" in rig.types()


def test_late_arrival_is_recorded_not_on_time(rig):
    # window ended 60 s ago: inside the 120 s skew, so granted, but the record says late
    rig.ctl.present(rig.issue(not_before=int(T0 - 3600), not_after=int(T0 - 60)))
    rig.advance(11)
    assert rig.last("door.checkin").body["on_time"] is False


def test_forced_open_alarm_and_lockout(rig):
    rig.open_door()
    assert not rig.unlocked
    assert rig.types()[:2] == ["door.forced_open", "door.lockout"]
    assert rig.last("door.lockout").body["cause"] == "forced_open"
    rig.close_door()
    assert "door.alarm_cleared" in rig.types()
    st = rig.ctl.status()
    assert st.lockout == "forced_open" and st.state == "locked"
    assert rig.ctl.present(rig.issue()).reason == Reason.LOCKOUT
    assert not rig.unlocked


def test_held_open_alarm_after_held_open_time(rig):
    rig.ctl.present(rig.issue())
    rig.open_door()
    rig.advance(59)
    assert "door.held_open" not in rig.types()
    rig.advance(1.5)
    assert "door.held_open" in rig.types()
    assert rig.last("door.held_open").body["open_s"] >= 60
    assert rig.ctl.status().lockout == "held_open"
    rig.close_door()
    assert rig.ctl.status().lockout == "held_open"    # latched until reset
    assert rig.ctl.reset_lockout("server", "driver left it propped").ok
    assert rig.ctl.status().lockout is None


def test_rex_unlocks_and_shunts_forced_alarm(rig):
    rig.press_rex()
    assert rig.unlocked
    rig.advance(1)
    rig.open_door()
    rig.close_door()
    assert "door.forced_open" not in rig.types()
    assert not rig.unlocked
    assert rig.ctl.status().lockout is None


def test_rex_without_unlock_shunts_only(tmp_path):
    rig = make_rig(tmp_path, timings=DoorTimings(rex_unlocks=False))
    rig.press_rex()
    assert not rig.unlocked                            # crash bar door: REX only shunts
    rig.open_door()
    assert "door.forced_open" not in rig.types()
    rig.close_door()
    rig.advance(6)
    rig.open_door()                                    # shunt window over
    assert "door.forced_open" in rig.types()


def test_rex_still_works_in_lockout(rig):
    rig.tamper(True)
    assert rig.ctl.status().lockout == "tamper"
    rig.press_rex()
    assert rig.unlocked                                # free egress, always
    rig.advance(6)
    assert not rig.unlocked


def test_tamper_lockout_reset_refused_while_active(rig):
    rig.tamper(True)
    assert "door.tamper" in rig.types() and rig.ctl.status().lockout == "tamper"
    res = rig.ctl.reset_lockout("console", "")
    assert not res.ok and "tamper" in res.detail
    rig.tamper(False)
    res = rig.ctl.reset_lockout("console:bob", "reader cover refitted")
    assert res.ok
    reset = rig.last("door.lockout_reset").body
    assert reset == {"cause": "tamper", "by": "console:bob", "note": "reader cover refitted",
                     "chain": reset["chain"]}
    assert rig.ctl.present(rig.issue()).granted


def test_reset_refused_while_door_open(rig):
    rig.open_door()
    assert not rig.ctl.reset_lockout("console").ok
    rig.close_door()
    assert rig.ctl.reset_lockout("console").ok


def test_jammed_when_relay_does_not_follow(rig):
    pin = rig.relay_pin
    orig = pin._set_state
    pin._set_state = lambda value: None                # relay driver stuck: pin never changes
    d = rig.ctl.present(rig.issue())
    assert not d.granted and d.reason == Reason.JAMMED
    assert "door.granted" in rig.types()               # the use was committed ...
    assert not rig.unlocked                            # ... but the output never released
    assert rig.last("door.checkin").body["outcome"] == "jammed"
    assert rig.ctl.status().state == "jammed"
    assert "door.jammed" in rig.types()
    pin._set_state = orig
    assert rig.ctl.present(rig.issue(po="2")).reason == Reason.JAMMED
    assert rig.ctl.reset_lockout("tech", "replaced relay board").ok
    assert rig.ctl.status().state == "locked" and not rig.unlocked
    rig.advance(15)
    assert not rig.unlocked and [s.state for s in rig.relay_pin.states][-1] is False


def test_jammed_by_lock_monitor(tmp_path):
    rig = make_rig(tmp_path, monitor=True)
    rig.ctl.present(rig.issue())
    assert rig.unlocked and rig.ctl.status().state == "unlocking"
    rig.advance(2.5)                                   # monitor never reported unlocked
    assert rig.ctl.status().state == "jammed"
    assert "lock monitor" in rig.last("door.jammed").body["detail"]


def test_lock_monitor_confirms(tmp_path):
    rig = make_rig(tmp_path, monitor=True)
    rig.ctl.present(rig.issue())
    rig.factory.pin(MONITOR).drive_high()              # bolt retracted
    assert rig.ctl.status().state == "unlocked"
    rig.advance(11)
    rig.factory.pin(MONITOR).drive_low()
    rig.advance(3)
    assert rig.ctl.status().state == "locked"
    assert "door.jammed" not in rig.types()


def test_self_test_relay_pulses_and_relocks(rig):
    res = rig.ctl.self_test_relay(by="console", pulse_s=1.0)
    assert res.ok and rig.unlocked
    rig.advance(1.5)
    assert not rig.unlocked
    assert rig.last("door.self_test").body["ok"] is True


def test_self_test_refused_in_lockout(rig):
    rig.tamper(True)
    res = rig.ctl.self_test_relay()
    assert not res.ok and "lockout" in res.detail and not rig.unlocked


def test_relay_pin_never_released_by_denials(rig):
    rig.relay_pin.clear_states()
    for i, text in enumerate(["junk", rig.issue(door="x"), rig.issue(not_before=int(T0 - 9999), not_after=int(T0 - 999))]):
        rig.clock.advance(10)
        assert not rig.ctl.present(text).granted
    assert [s.state for s in rig.relay_pin.states] == [False]
    assert rig.factory.pin(RELAY).function == "output"


def test_grant_while_door_already_open_still_writes_checkin(rig):
    rig.ctl.present(rig.issue(po="first"))
    rig.open_door()
    rig.clock.advance(5)
    rig.ctl.present(rig.issue(po="second"))           # second driver while the door is open
    assert rig.last("door.checkin").body["outcome"] == "superseded"
    rig.advance(3)
    rig.close_door()
    ci = rig.last("door.checkin").body
    assert ci["po"] == "second" and ci["outcome"] == "closed" and ci["opened_at"] is not None
    assert not rig.unlocked and rig.ctl.status().lockout is None


def test_tamper_during_grant_relocks_at_once(rig):
    rig.ctl.present(rig.issue())
    assert rig.unlocked
    rig.tamper(True)                                   # reader ripped off while released
    assert not rig.unlocked and rig.ctl.status().lockout == "tamper"


def test_rex_egress_in_lockout_ends_with_its_window(rig):
    rig.ctl.present(rig.issue())
    rig.press_rex()
    rig.tamper(True)                                   # inside the REX window: egress wins
    assert rig.unlocked
    rig.advance(5.5)                                   # REX window over, grant window not
    assert not rig.unlocked
