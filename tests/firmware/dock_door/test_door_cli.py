"""`storeedge dock_door reset-lockout` (signed manager command through the store server's
CommandSender, over a real Mosquitto) and `storeedge dock_door events` (local audit, store DB)."""
from __future__ import annotations



from storeedge.drivers.clock import SystemClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.config import load_config
from storeedge.firmware.dock_door.config import DoorConfig
from helpers.stack import store_dict, write_yaml
from helpers.cmdkit import CommandKit
from helpers.door_rig import Watcher, run, write_config


def test_reset_lockout_cli_and_door_events(tmp_path, broker, capsys, monkeypatch):
    import logging
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    from helpers.door_app import DoorUnderTest
    _, pub, _ = run(["keygen", "--kid", "1", "--out", str(tmp_path / "k.pem")], capsys)
    cfg_path = write_config(tmp_path, pub.strip(), broker_url=broker.url)
    cfg = load_config(cfg_path, DoorConfig)
    kit = CommandKit(tmp_path / "pki")
    cfg.security.command_pub = str(kit.pub_path)
    doc = store_dict(broker.url, f"sqlite:///{tmp_path / 'store.db'}")
    doc["security"]["command_key"] = str(kit.key_path)
    st = write_yaml(tmp_path / "st.yaml", doc)
    factory = new_mock_factory()
    watcher = Watcher(broker, kit)
    app = DoorUnderTest(cfg, clock=SystemClock(), pin_factory=factory)
    try:
        app.start()
        factory.pin(27).drive_low()                                  # door closed
        factory.pin(23).drive_low()                                  # tamper: lockout
        assert watcher.wait(lambda e: e["type"] == "door.lockout")
        factory.pin(23).drive_high()
        rc, out, err = run(["reset-lockout", "door-1", "--note", "cover refitted", "--by",
                            "maria", "--config", str(st), "--store", "s0042"], capsys)
        assert rc == 0, err
        assert len(out.strip()) > 8                                  # the command id
        assert watcher.wait(lambda e: e["type"] == "door.lockout_reset"
                            and e["body"]["by"] == "maria")
    finally:
        app.stop()
        watcher.close()
    rc, out, _ = run(["events", "--config", str(cfg_path), "-n", "5"], capsys)
    assert rc == 0
    lines = out.strip().splitlines()
    assert '"type":"door.lockout_reset"' in lines[-1] and '"by":"maria"' in lines[-1]
    assert '"chain"' not in out


def test_door_events_refusals(tmp_path, capsys):
    rc, _, err = run(["events"], capsys)
    assert rc == 1 and "give --config DOOR.yaml" in err and "Traceback" not in err
    doc = store_dict("mqtt://127.0.0.1:1", f"sqlite:///{tmp_path / 'nosuch.db'}")
    st = write_yaml(tmp_path / "st.yaml", doc)
    rc, _, err = run(["events", "--server-config", str(st), "door-1"], capsys)
    assert rc == 1 and "does not exist" in err
    assert not (tmp_path / "nosuch.db").exists()
