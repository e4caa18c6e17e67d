"""The CLI (keygen, issue PNG, revoke, trust, apply-revocations, --validate-config) and the whole
door app over a real Mosquitto broker, a pty serial scanner and mock pins."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from storeedge.drivers.clock import SystemClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.config import load_config
from storeedge.firmware.dock_door.config import DoorConfig
from storeedge.firmware.dock_door.main import parse_when
from storeedge.firmware.dock_door.store import DoorStateStore
from helpers.cmdkit import CommandKit
from helpers.door_rig import run, write_config, Watcher


def test_parse_when():
    assert parse_when("1795000000") == 1795000000
    assert parse_when("2026-11-24T06:00Z") == parse_when("2026-11-24T06:00:00+00:00")
    assert parse_when("2026-11-24T07:00+01:00") == parse_when("2026-11-24T06:00")


def test_issue_writes_png_a_camera_can_read(tmp_path, capsys):
    rc, pub, _ = run(["keygen", "--kid", "3", "--out", str(tmp_path / "k.pem")], capsys)
    assert rc == 0 and pub.startswith("sedpub1:3:")
    rc, _, err = run(["keygen", "--kid", "3", "--out", str(tmp_path / "k.pem")], capsys)
    assert rc == 1 and "exists" in err                       # never overwrites a key silently
    rc, out, err = run(["issue", "--key", str(tmp_path / "k.pem"), "--store", "s0042",
                        "--door", "door-1", "--vendor", "ACME", "--driver", "Dee", "--po", "PO-9",
                        "--from", "2026-11-24T06:00Z", "--until", "2026-11-24T08:00Z",
                        "--png", str(tmp_path / "code.png")], capsys)
    assert rc == 0 and "cred_id" in err
    text = out.strip()
    img = np.asarray(Image.open(tmp_path / "code.png").convert("L"))
    decoded = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode)  # see test_browser
    assert [d.text for d in decoded] == [text]
    rc, _, err = run(["issue", "--key", str(tmp_path / "k.pem"), "--store", "s0042",
                      "--door", "door-1", "--vendor", "ACME", "--driver", "Dee", "--po", "PO-9",
                      "--from", "2026-11-24T08:00Z", "--until", "2026-11-24T06:00Z"], capsys)
    assert rc == 1 and "--from 2026-11-24T08:00Z is after --until 2026-11-24T06:00Z" in err


def test_issue_warns_when_the_window_already_ended(tmp_path, capsys):
    from storeedge.firmware.dock_door.main import issue_window
    run(["keygen", "--kid", "3", "--out", str(tmp_path / "k.pem")], capsys)
    base = ["issue", "--key", str(tmp_path / "k.pem"), "--store", "s0042", "--door", "door-1",
            "--vendor", "ACME", "--driver", "Dee", "--po", "PO-9"]
    now = time.time()
    rc, out, err = run(base + ["--from", str(int(now - 13 * 86400)),
                               "--until", str(int(now - 12 * 86400))], capsys)
    assert rc == 0 and out.strip()          # still written (a test code may be wanted)
    assert "warning: the window ended 12 d 0 h ago" in err and "refused at the door" in err
    rc, _, err = run(base + ["--from", str(int(now)), "--until", str(int(now + 3600))], capsys)
    assert rc == 0 and "warning" not in err
    assert issue_window("100", "200", now=150.0) == (100, 200)


def test_revoke_trust_apply_on_a_door_config(tmp_path, capsys):
    key = str(tmp_path / "k.pem")
    _, pub, _ = run(["keygen", "--kid", "1", "--out", key], capsys)
    cfg = write_config(tmp_path, pub.strip())
    _, pub2, _ = run(["keygen", "--kid", "2", "--out", str(tmp_path / "k2.pem")], capsys)
    rc, out, _ = run(["trust", "--config", str(cfg), pub2.strip()], capsys)
    assert rc == 0 and "[2]" in out
    rc, _, _ = run(["revoke", "--key", key, "--store", "s0042", "--serial", "4",
                    "--cred", "ab" * 12, "--out", str(tmp_path / "rl.json")], capsys)
    assert rc == 0
    rc, _, err = run(["apply-revocations", "--config", str(cfg), str(tmp_path / "rl.json")], capsys)
    assert rc == 1 and "unknown key 1" in err                # key 1 not trusted on the door yet
    run(["trust", "--config", str(cfg), pub.strip()], capsys)
    rc, out, _ = run(["apply-revocations", "--config", str(cfg), str(tmp_path / "rl.json")], capsys)
    assert rc == 0 and "serial 4" in out
    rc, _, err = run(["apply-revocations", "--config", str(cfg), str(tmp_path / "rl.json")], capsys)
    assert rc == 1 and "not newer" in err
    st = DoorStateStore(tmp_path / "door.db", dev="door-1")
    assert st.cred_revoked(bytes.fromhex("ab" * 12)) and st.trusted_kids() == [1, 2]
    st.close()


def test_validate_config(tmp_path, capsys):
    cfg = write_config(tmp_path, "sedpub1:1:" + "A" * 43)
    rc, out, _ = run(["--config", str(cfg), "--validate-config"], capsys)
    assert rc == 0 and out.startswith("OK")
    for extra, key in [({"unlock_s": 0.1}, "door.unlock_s"), ({"lockout_on": ["fire"]},
                       "door.lockout_on[0]"), ({"trusted_keys": ["nope"]}, "door.trusted_keys[0]"),
                       ({"rex": {"pin": 17}}, "door.relay"), ({"relay": {"pin": 99}},
                                                             "door.relay.pin")]:
        bad = write_config(tmp_path, "sedpub1:1:" + "A" * 43, extra)
        rc, _, err = run(["--config", str(bad), "--validate-config"], capsys)
        assert rc == 1 and key in err, err


def test_door_app_end_to_end(tmp_path, broker, capsys):
    from helpers.door_app import DoorUnderTest
    from storeedge.audit import verify_chain
    key = str(tmp_path / "k.pem")
    _, pub, _ = run(["keygen", "--kid", "1", "--out", key], capsys)
    master, slave = os.openpty()
    cfg_path = write_config(tmp_path, pub.strip(), {"scanner": {"url": os.ttyname(slave)}, "repeat_s": 0},
                            broker_url=broker.url)
    cfg = load_config(cfg_path, DoorConfig)
    kit = CommandKit(tmp_path / "pki")
    cfg.security.command_pub = str(kit.pub_path)
    factory = new_mock_factory()
    watcher = Watcher(broker, kit)
    app = DoorUnderTest(cfg, clock=SystemClock(), pin_factory=factory)
    try:
        assert factory.pin(17).state is False
        app.start()
        factory.pin(27).drive_low()                                  # door closed
        now = int(time.time())
        _, code, _ = run(["issue", "--key", key, "--store", "s0042", "--door", "door-1",
                          "--vendor", "ACME", "--driver", "Dee", "--po", "PO-7",
                          "--from", str(now - 60), "--until", str(now + 600)], capsys)
        os.write(master, code.strip().encode() + b"\r\n")
        assert watcher.wait(lambda e: e["type"] == "door.granted")
        assert factory.pin(17).state is True                          # relay on
        factory.pin(27).drive_high(); factory.pin(27).drive_low()     # driver walks in
        assert watcher.wait(lambda e: e["type"] == "door.checkin")
        assert factory.pin(17).state is False
        os.write(master, code.strip().encode() + b"\r\n")             # replay the code
        assert watcher.wait(lambda e: e["type"] == "door.denied" and e["body"]["reason"] == "used")
        factory.pin(23).drive_low()                                   # tamper
        assert watcher.wait(lambda e: e["type"] == "door.lockout")
        factory.pin(23).drive_high()
        watcher.command("reset_lockout", {"note": "cover refitted"})
        assert watcher.wait(lambda e: e["type"] == "door.lockout_reset"
                            and e["body"]["by"] == "test")
        _, pub2, _ = run(["keygen", "--kid", "2", "--out", str(tmp_path / "k2.pem")], capsys)
        run(["announce-key", "--key", key, "--store", "s0042", "--serial", "1", "--public",
             pub2.strip(), "--out", str(tmp_path / "ks.json")], capsys)
        watcher.command("keys", {"keyset": (tmp_path / "ks.json").read_text()})
        assert watcher.wait(lambda e: e["type"] == "device.command" and e["body"]["name"] ==
                            "keys" and e["body"]["ok"] and e["body"]["result"]["trusted"] == [1, 2])
        watcher.command("door_status", {})
        assert watcher.wait(lambda e: e["type"] == "device.command" and e["body"]["name"] ==
                            "door_status" and e["body"]["result"]["state"] == "locked")
    finally:
        app.stop()
        watcher.close()
        os.close(master)
        os.close(slave)
    door = [e for e in watcher.events if e["type"].startswith("door.")]
    assert verify_chain(door).ok
    assert factory.pin(17).state is False


def test_key_rotation_by_signed_announcement(tmp_path, capsys):
    k1, k2 = str(tmp_path / "k1.pem"), str(tmp_path / "k2.pem")
    _, pub1, _ = run(["keygen", "--kid", "1", "--out", k1], capsys)
    _, pub2, _ = run(["keygen", "--kid", "2", "--out", k2], capsys)
    cfg = write_config(tmp_path, pub1.strip())
    run(["trust", "--config", str(cfg), pub1.strip()], capsys)
    # key 2 cannot announce itself: it is not trusted yet
    run(["announce-key", "--key", k2, "--store", "s0042", "--serial", "1", "--public",
         pub2.strip(), "--out", str(tmp_path / "self.json")], capsys)
    rc, _, err = run(["apply-keys", "--config", str(cfg), str(tmp_path / "self.json")], capsys)
    assert rc == 1 and "unknown key 2" in err
    rc, _, _ = run(["announce-key", "--key", k1, "--store", "s0042", "--serial", "1", "--public",
                    pub2.strip(), "--out", str(tmp_path / "ks.json")], capsys)
    assert rc == 0
    rc, out, _ = run(["apply-keys", "--config", str(cfg), str(tmp_path / "ks.json")], capsys)
    assert rc == 0 and "[1, 2]" in out
    rc, _, err = run(["apply-keys", "--config", str(cfg), str(tmp_path / "ks.json")], capsys)
    assert rc == 1 and "not newer" in err                     # no replay
    data = json.loads((tmp_path / "ks.json").read_text())
    data["body"] = data["body"][:-2] + ("AA" if data["body"][-2:] != "AA" else "BB")
    (tmp_path / "bad.json").write_text(json.dumps(data))
    rc, _, err = run(["apply-keys", "--config", str(cfg), str(tmp_path / "bad.json")], capsys)
    assert rc == 1


def test_cold_probe_reading_from_real_format_w1_files(tmp_path, capsys):
    """door.probe reads a DS18B20 through the sysfs backend (files written by the 1-Wire sim)."""
    from storeedge.drivers.clock import SimulatedClock
    from storeedge.drivers.onewire.sim import FreezerPhysics, SimulatedBus, ThermalModel
    from helpers.door_app import DoorUnderTest
    clock = SimulatedClock()
    sim = SimulatedBus(tmp_path / "w1", clock=clock)
    sim.add_probe("28-0000a1b2c3d4", ThermalModel(FreezerPhysics(setpoint_c=-18), clock.time()))
    expected = sim.read("28-0000a1b2c3d4").temp_c
    _, pub, _ = run(["keygen", "--kid", "1", "--out", str(tmp_path / "k.pem")], capsys)
    cfg = load_config(write_config(tmp_path, pub.strip(), {"probe": {
        "rom": "28-0000a1b2c3d4", "backend": "sysfs", "root": str(tmp_path / "w1")}}), DoorConfig)
    app = DoorUnderTest(cfg, clock=clock, pin_factory=new_mock_factory())
    try:
        assert app.ctl.p.probe() == pytest.approx(expected, abs=0.01)
        assert -19.5 < expected < -16.5
        sim.vanish("28-0000a1b2c3d4")
        assert app.ctl.p.probe() is None
    finally:
        app.ctl.close(); app.relay.close(); app.ctl.p.state.close(); app.svc.close()


def test_storeedge_door_cli_runs_and_stops_on_sigterm(tmp_path, broker, capsys):
    """The real command line: starts on mock pins, publishes, stops cleanly on SIGTERM."""
    import signal
    import subprocess
    import sys
    from storeedge.firmware.common.outbox import Identity, Outbox
    from storeedge.settings import OutboxSection
    _, pub, _ = run(["keygen", "--kid", "1", "--out", str(tmp_path / "k.pem")], capsys)
    cfg = write_config(tmp_path, pub.strip(), broker_url=broker.url)
    watcher = Watcher(broker)
    log = tmp_path / "door.log"                  # a file, not a pipe nobody reads: never fills
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "storeedge", "door", "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert watcher.wait(lambda e: e["type"] == "door.boot"), log.read_text()
        boot = next(e for e in watcher.events if e["type"] == "door.boot")
        assert boot["body"]["relay"] == "locked" and boot["body"]["chain"]["i"] == 0
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0, log.read_text()
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)     # faulthandler: every thread's stack
            time.sleep(1.0)
            pytest.fail("door did not stop within 30 s of SIGTERM:\n" + log.read_text()[-8000:])
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.close()
    ob = Outbox(OutboxSection(path=str(tmp_path / "outbox.db")),
                Identity("door-1", "dock_door", "s0042"))
    try:
        assert "door.boot" in [e.type for e in ob.recent(50)]
    finally:
        ob.close()


def test_door_app_reads_codes_from_a_replay_camera(tmp_path, broker, capsys):
    """camera: {backend: replay}: image files of a phone-held QR go through the barcode reader
    and open the door; the code in the following frames is not re-used or denied."""
    from helpers.door_app import DoorUnderTest
    from storeedge.qrimage import paste_into_frame, qr_gray
    key = str(tmp_path / "k.pem")
    _, pub, _ = run(["keygen", "--kid", "1", "--out", key], capsys)
    now = int(time.time())
    _, code, _ = run(["issue", "--key", key, "--store", "s0042", "--door", "door-1",
                      "--vendor", "ACME", "--driver", "Dee", "--po", "PO-3",
                      "--from", str(now - 60), "--until", str(now + 600)], capsys)
    frames = tmp_path / "frames"
    frames.mkdir()
    empty = np.full((480, 640), 128, np.uint8)
    shown = paste_into_frame(qr_gray(code.strip(), scale=3), (640, 480), at=(180, 60))
    for i, img in enumerate([empty, empty, shown, shown, shown, empty]):
        Image.fromarray(img).save(frames / f"f{i:02d}.png")
    cfg = load_config(write_config(tmp_path, pub.strip(), {"camera": {
        "backend": "replay", "source": str(frames)}}, broker_url=broker.url), DoorConfig)
    factory = new_mock_factory()
    app = DoorUnderTest(cfg, clock=SystemClock(), pin_factory=factory)
    try:
        factory.pin(27).drive_low()
        app.start()
        assert wait_until(lambda: factory.pin(17).state is True)
        time.sleep(1.0)                                  # the replay loops the code in view
        types = [r.type for r in app.ctl.p.state.recent_audit(100)]
    finally:
        app.stop()
    assert types.count("door.granted") == 1 and "door.denied" not in types


def wait_until(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_the_runner_locks_the_relay_before_it_opens_the_outbox(tmp_path, capsys):
    """Boot order through the one runner: ``before_sink`` drives the relay (locked) first; an
    outbox that cannot open then fails the start, with the relay already set locked."""
    from storeedge import apps
    from storeedge.firmware.common.runner import AppRunner
    _, pub, _ = run(["keygen", "--kid", "1", "--out", str(tmp_path / "k.pem")], capsys)
    cfg = load_config(write_config(tmp_path, pub.strip()), DoorConfig)
    (tmp_path / "outbox.db").mkdir()                # the outbox path is taken by a folder
    factory = new_mock_factory()
    runner = AppRunner(apps.app("dock_door"), cfg, SystemClock(), {"pin_factory": factory})
    with pytest.raises(Exception) as failed:
        runner.build()
    assert not isinstance(failed.value, (TypeError, AttributeError, NameError))
    relay = factory.pin(17)
    assert relay.function == "output" and relay.state is False      # driven, locked
    assert runner.app is None
