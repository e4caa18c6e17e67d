"""Dock door attacks of issue 13, reproduced and refused: forged network commands (relay
test, lockout reset), role and replay checks over real Mosquitto; the local relay test still
judged by the contact; key ids never redefined; bounded revocation serials; a wall clock set
back (or booted ahead) never lets a used code open the door again; NaN timings refused."""
from __future__ import annotations

import json
import os
import time

import pytest
import yaml

from helpers.cmdkit import CommandKit, connect_as, sign_unchecked
from helpers.door_rig import T0, make_rig
from helpers.stack import GATEWAY_ID, device_security, link_for, wait_for
from storeedge.drivers.clock import SystemClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.config import load_config
from storeedge.firmware.dock_door.config import DoorConfig
from storeedge.credential import generate_signing_key
from storeedge.credential import parse
from storeedge.exc import KeyFileError, RevocationListError
from storeedge.doorkeys import (KeyAnnouncement, RevocationList,
                                               public_key_line, sign_keyset, sign_revocations)
from storeedge.firmware.dock_door.main import main as door_main
from storeedge.firmware.dock_door.store import MAX_SERIAL_STEP
from storeedge.firmware.dock_door.verify import Reason
from storeedge.signing import Target

RELAY, CONTACT, TAMPER = 17, 27, 23
BASE = "se/v1/s0042/dock_door/door-1/cmd"


def door_yaml(tmp_path, broker_url, **door) -> str:
    """A door config; its link and ``security`` (``command.pub``) from the broker's PKI."""
    key = generate_signing_key(1)
    doc = {"device": {"id": "door-1", "kind": "dock_door", "store": "s0042"},
           "link": link_for(broker_url, "door-1", "dock_door"),
           "outbox": {"path": str(tmp_path / "outbox.db")},
           "security": device_security(broker_url, "door-1"),
           "door": {"state_path": str(tmp_path / "door.db"), "gpio_backend": "mock",
                    "rex": {"pin": 22}, "tamper": {"pin": TAMPER},
                    "trusted_keys": [public_key_line(key.kid, key.public)], **door}}
    path = tmp_path / "door.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def door(tmp_path, broker, store_pki):
    """A running DoorApp on a TLS + ACL broker, trusting the store PKI's command key.

    Forged commands come from the gateway identity (the one allowed to write device
    commands in the store): what a compromised gateway could send."""
    from helpers.door_app import DoorUnderTest

    kit = CommandKit.from_pki(store_pki)
    cfg = load_config(door_yaml(tmp_path, broker.url), DoorConfig)
    factory = new_mock_factory()
    app = DoorUnderTest(cfg, clock=SystemClock(), pin_factory=factory)
    client = connect_as(broker, GATEWAY_ID, "gateway")
    app.start()
    factory.pin(CONTACT).drive_low()                  # door closed
    assert app.svc.link.wait_connected(10)

    def send(name: str, payload: bytes) -> None:
        client.publish(f"{BASE}/{name}", payload, qos=1).wait_for_publish(5)

    try:
        yield app, factory, kit, send
    finally:
        client.disconnect()
        client.loop_stop()
        app.stop()
        factory.close()


def refused(app) -> dict:
    return dict(app.svc.gate.refusals.total)


def test_forged_relay_test_does_nothing_and_a_later_opening_is_forced(door):
    app, factory, kit, send = door
    send("test_relay", json.dumps({"args": {"pulse_s": 5}, "by": "store-manager"}).encode())
    forged = sign_unchecked(kit, Target("s0042", "dock_door", "door-1"), "test_relay",
                             "manager")                  # even with the store's key
    send("test_relay", forged)
    assert wait_for(lambda: refused(app).get("unknown_command") == 2, 10)
    assert factory.pin(RELAY).state is False             # never released
    factory.pin(CONTACT).drive_high()                    # someone pulls the door
    assert wait_for(lambda: app.ctl.status().lockout == "forced_open", 10)
    assert "forced_open" in app.ctl.status().alarms
    assert factory.pin(RELAY).state is False


def test_lockout_reset_needs_a_fresh_manager_signature_for_this_door(door):
    app, factory, kit, send = door
    factory.pin(TAMPER).drive_low()                      # tamper -> lockout
    factory.pin(TAMPER).drive_high()
    assert wait_for(lambda: app.ctl.status().lockout == "tamper", 10)
    target = Target("s0042", "dock_door", "door-1")
    send("reset_lockout", json.dumps({"args": {"note": "x"}, "by": "store-manager",
                                      "id": "f1"}).encode())                      # unsigned
    send("reset_lockout", sign_unchecked(kit, target, "reset_lockout", "associate"))
    send("reset_lockout", kit.sign("dock_door", "door-1", "reset_lockout", {},
                                   exp=int(time.time()) - 5))                     # expired
    send("reset_lockout", kit.sign("dock_door", "door-2", "reset_lockout", {}))   # other door
    assert wait_for(lambda: sum(refused(app).values()) == 4, 10)
    assert refused(app) == {"unsigned": 1, "role_not_allowed": 1, "expired": 1,
                            "wrong_device": 1}
    assert app.ctl.status().lockout == "tamper"          # still locked out
    genuine = kit.sign("dock_door", "door-1", "reset_lockout", {"note": "cover refitted"},
                       by="maria", role="manager")
    send("reset_lockout", genuine)
    assert wait_for(lambda: app.ctl.status().lockout is None, 10)
    reset = [e for e in app.svc.recent_events(50, "door.lockout_reset")][-1]
    assert reset.body["by"] == "maria"                   # the signed identity
    factory.pin(TAMPER).drive_low()                      # locked out again ...
    factory.pin(TAMPER).drive_high()
    assert wait_for(lambda: app.ctl.status().lockout == "tamper", 10)
    send("reset_lockout", genuine)                       # ... and the captured reset replayed
    assert wait_for(lambda: refused(app).get("replayed") == 1, 10)
    assert app.ctl.status().lockout == "tamper"


# ----------------------------------------------------------------------------- local rig


def test_an_opening_during_the_local_relay_test_raises_forced_open(tmp_path):
    rig = make_rig(tmp_path)
    res = rig.ctl.self_test_relay(by="console", pulse_s=2.0)
    assert res.ok and rig.unlocked
    rig.open_door()
    assert "door.forced_open" in rig.types() and "door.lockout" in rig.types()
    assert not rig.unlocked


def test_a_key_announcement_never_redefines_an_existing_key_id(tmp_path):
    rig = make_rig(tmp_path)
    st, k1, attacker = rig.ctl.p.state, rig.key, generate_signing_key(1)
    k2 = generate_signing_key(2)

    def announce(serial, keys):
        return sign_keyset(k1, KeyAnnouncement("s0042", serial, keys))

    with pytest.raises(KeyFileError, match="redefines existing key id 1"):
        st.apply_keyset(announce(1, {1: attacker.public}), store="s0042")
    assert st.apply_keyset(announce(2, {2: k2.public}), store="s0042").serial == 2
    with pytest.raises(KeyFileError, match="redefines existing key id 2"):
        st.apply_keyset(announce(3, {2: attacker.public}), store="s0042")
    st.apply_keyset(announce(4, {1: k1.public, 2: k2.public}), store="s0042")  # same keys: ok
    assert rig.ctl.present(rig.issue(key=attacker)).reason == Reason.BAD_SIGNATURE
    assert rig.ctl.present(rig.issue(key=k2)).granted


def test_revocation_serial_grows_only_by_a_bounded_step(tmp_path):
    rig = make_rig(tmp_path)
    st, key = rig.ctl.p.state, rig.key

    def rl(serial, creds=()):
        return sign_revocations(key, RevocationList("s0042", serial, int(T0), frozenset(creds)))

    with pytest.raises(RevocationListError, match="jumps more than"):
        st.apply_revocations(rl(2**62), store="s0042")
    with pytest.raises(RevocationListError, match="jumps more than"):
        st.apply_revocations(rl(MAX_SERIAL_STEP + 1), store="s0042")
    text = rig.issue()
    assert st.apply_revocations(rl(5, [parse(text).cred_id]), store="s0042").serial == 5
    assert st.revocation_serial() == 5                   # the genuine list still applies
    assert rig.ctl.present(text).reason == Reason.REVOKED


def test_clock_set_back_never_opens_the_door_a_second_time(tmp_path):
    rig = make_rig(tmp_path)
    text = rig.issue(not_before=int(T0 - 600), not_after=int(T0 + 4 * 86400))
    assert rig.ctl.present(text).granted
    rig.open_door()
    rig.close_door()
    rig.advance(120)
    rig.clock.set_time(T0 + 86400)                      # the door lives a day on
    rig.ctl.advance_clock_hwm()
    rig.clock.set_time(T0 - 300)                        # then the clock is set back
    rig.advance(5)
    d = rig.ctl.present(text)
    assert not d.granted and d.reason == Reason.CLOCK_BEHIND
    fresh = rig.issue(not_before=int(T0 - 600), not_after=int(T0 + 3600), po="PO-2")
    assert rig.ctl.present(fresh).reason == Reason.CLOCK_BEHIND   # no grants at all
    assert not rig.unlocked
    assert rig.last("door.denied").body["reason"] == "clock_behind"


def test_booting_days_ahead_prunes_nothing_and_the_code_stays_used(tmp_path):
    from storeedge.drivers.clock import SimulatedClock

    rig = make_rig(tmp_path)
    text = rig.issue(not_before=int(T0 - 600), not_after=int(T0 + 3600))
    assert rig.ctl.present(text).granted
    cid = parse(text).cred_id
    rig.ctl.close(); rig.ctl.p.relay.close(); rig.ctl.p.state.close()
    ahead = make_rig(tmp_path, key=rig.key, clock=SimulatedClock(start=T0 + 8 * 86400))
    assert ahead.ctl.p.state.uses(cid) == 1              # not pruned by the jump
    ahead.ctl.close(); ahead.ctl.p.relay.close(); ahead.ctl.p.state.close()
    back = make_rig(tmp_path, key=rig.key, clock=SimulatedClock(start=T0 + 60))
    d = back.ctl.present(text)
    assert not d.granted and d.reason == Reason.CLOCK_BEHIND
    assert back.ctl.p.state.uses(cid) == 1 and not back.unlocked
    back.ctl.close(); back.ctl.p.relay.close(); back.ctl.p.state.close()


# ----------------------------------------------------------------------------- NaN timings


@pytest.mark.parametrize("key,value", [("skew_s", ".nan"), ("unlock_s", ".nan"),
                                       ("skew_s", ".inf"), ("held_open_s", "-.inf")])
def test_non_finite_door_timings_are_refused_with_key_and_line(tmp_path, capsys, key, value):
    path = door_yaml(tmp_path, "mqtt://127.0.0.1:1")
    text = open(path).read().replace("door:\n", f"door:\n  {key}: {value}\n", 1)
    open(path, "w").write(text)
    rc = door_main(["--config", path, "--validate-config"])
    err = capsys.readouterr().err
    assert rc == 1 and f"door.{key} (line" in err and "not a finite number" in err, err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- end to end


def test_door_attacks_end_to_end_and_every_genuine_event_stored_once(broker_factory, store_pki,
                                                                    tmp_path):
    """Door, gateway and store server on TLS + ACL brokers: forged commands (as a compromised
    gateway would send them) do nothing, a forced opening is alarmed, the store page's signed
    reset works, and the store holds every door event exactly once with an intact chain."""
    from helpers.checker import check_delivery
    from helpers.stack import STORE, event_path
    from storeedge.link import MqttLink
    from storeedge.settings import LinkSection
    from helpers.door_app import DoorUnderTest
    from storeedge.audit import verify_chain
    from storeedge.server.commands import CommandSender

    kit = CommandKit.from_pki(store_pki)
    with event_path(broker_factory, tmp_path) as (down, up, relay, store):
        app = DoorUnderTest(load_config(door_yaml(tmp_path, down.url), DoorConfig),
                      clock=SystemClock(), pin_factory=(factory := new_mock_factory()))
        attacker = connect_as(down, GATEWAY_ID, "gateway")
        page = MqttLink("se-store-page", LinkSection(**link_for(up.url, "store-1",
                                                                "store_server")))
        page.start()
        try:
            app.start()
            factory.pin(CONTACT).drive_low()
            assert app.svc.link.wait_connected(10) and page.wait_connected(10)
            # the gateway subscribed on both sides (else the page's command finds no one)
            assert relay.up.wait_connected(10) and relay.down.wait_connected(10)
            for name, doc in (("test_relay", {"args": {"pulse_s": 5}, "by": "store-manager"}),
                              ("reset_lockout", {"args": {}, "by": "store-manager"})):
                attacker.publish(f"{BASE}/{name}", json.dumps(doc), qos=1).wait_for_publish(5)
            assert wait_for(lambda: sum(refused(app).values()) == 2, 10)
            assert refused(app) == {"unknown_command": 1, "unsigned": 1}
            assert factory.pin(RELAY).state is False
            factory.pin(CONTACT).drive_high()                       # forced
            assert wait_for(lambda: app.ctl.status().lockout == "forced_open", 10)
            factory.pin(CONTACT).drive_low()
            sender = CommandSender(page, kit.signer, store.db)
            sender.send(STORE, "dock_door", "door-1", "reset_lockout", {"note": "checked"},
                        "maria", "manager")
            assert wait_for(lambda: app.ctl.status().lockout is None, 15)
            last = app.svc.outbox.last_seq
            report = lambda: check_delivery(tmp_path / "store.db",          # noqa: E731
                                            {"door-1": range(1, last + 1)})
            assert wait_for(lambda: report().ok, 30), str(report())
        finally:
            attacker.disconnect()
            attacker.loop_stop()
            page.stop()
            app.stop()
            factory.close()
        rows = store.db.events_of("door-1")
        types = [t for _s, t, _b in rows]
        assert "door.forced_open" in types and "device.commands_refused" in types
        [reset] = [b for _s, t, b in rows if t == "door.lockout_reset"]
        assert reset["by"] == "maria"
        door = [{"dev": "door-1", "seq": s, "type": t, "body": b} for s, t, b in rows
                if t.startswith("door.")]
        assert verify_chain(door).ok


def test_a_large_signed_revocation_list_arrives_as_a_manager_command(door):
    """2,000 revoked codes (~90 KiB signed command) fit the command size bound."""
    app, _factory, kit, send = door
    key = generate_signing_key(1)
    app.ctl.p.state.trust_key(1, key.public)         # replaces the fixture's key 1
    creds = frozenset(os.urandom(12) for _ in range(2000))
    rl = sign_revocations(key, RevocationList("s0042", 3, int(time.time()), creds)).decode()
    payload = kit.sign("dock_door", "door-1", "revocations", {"list": rl}, by="maria")
    assert 64 * 1024 < len(payload) < 128 * 1024
    send("revocations", payload)
    assert wait_for(lambda: app.ctl.status().revocation_serial == 3, 15)
    assert app.ctl.p.state.cred_revoked(next(iter(creds)))


def test_a_technician_resets_the_clock_mark_locally(tmp_path, capsys):
    """After a clock that ran ahead is fixed, only a local tool (door app stopped) lowers
    the mark; the door then grants again."""
    from storeedge.firmware.dock_door.store import DoorStateStore

    path = door_yaml(tmp_path, "mqtt://127.0.0.1:1")
    cfg = load_config(path, DoorConfig)
    st = DoorStateStore(cfg.door.state_path, dev="door-1")
    st.advance_clock_hwm(time.time() + 8 * 86400)          # it ran 8 days ahead
    st.close()
    assert door_main(["clock-mark", "--config", path]) == 0
    assert "(-69" in capsys.readouterr().out               # about -691200 s behind
    assert door_main(["clock-mark", "--config", path, "--reset"]) == 0
    assert "reset to" in capsys.readouterr().out
    st = DoorStateStore(cfg.door.state_path, dev="door-1")
    assert abs(st.clock_hwm() - time.time()) < 60
    st.close()
