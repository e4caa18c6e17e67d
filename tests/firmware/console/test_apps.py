"""The console's adapters on the real apps: door controller, freezer app, checkout camera and
scanner drivers -- all on simulated hardware (MockFactory pins, simulated 1-Wire bus,
synthetic camera, loop:// scanner line) -- and the console embedded in an app's process."""
from __future__ import annotations

import os

import pytest
import yaml
from helpers.console_rig import CHEAP, SECRET, Terminal

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.config import config_from_dict, load_config
from storeedge.firmware.console.auth import LockoutPolicy
from storeedge.firmware.console.console import ConsoleParts, build_console
from storeedge.firmware.console.secret import hash_secret, parse_hash, write_secret_file
from storeedge.firmware.console.targets import (CheckoutTarget, DoorTarget, FreezerTarget,
                                                StandaloneTarget)
from storeedge.settings import DeviceConfig
from helpers.console_rig import ROM_TOP, ROM_DAIRY, freezer_dict


def console_for(path, target, service, clock, port="loop://"):
    secret = parse_hash(hash_secret(SECRET, **CHEAP))
    parts = ConsoleParts(str(path), target, service, clock, secret, port)
    t = Terminal(build_console(parts, policy=LockoutPolicy()))
    t.login()
    return t


# ----------------------------------------------------------------------------- door


def door_config(tmp_path):
    doc = {"device": {"id": "door-1", "kind": "dock_door", "store": "s0042"},
           "outbox": {"path": str(tmp_path / "outbox.db")},
           "security": {"insecure": True},                 # the default plain link
           "door": {"state_path": str(tmp_path / "door.db"), "gpio_backend": "mock",
                    "rex": {"pin": 22}, "tamper": {"pin": 23}}}
    path = tmp_path / "door.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def door(tmp_path):
    from helpers.door_app import DoorUnderTest
    from storeedge.firmware.dock_door.config import DoorConfig
    path = door_config(tmp_path)
    factory = new_mock_factory()
    clock = SimulatedClock(auto_advance=True)
    app = DoorUnderTest(load_config(path, DoorConfig), clock=clock, pin_factory=factory)
    yield app, factory, path, DoorConfig
    app.svc.close()
    factory.close()


def test_door_relay_test_and_reset_lockout_through_the_controller(door):
    app, factory, path, DoorConfig = door
    t = console_for(path, DoorTarget(app.ctl, DoorConfig), app.svc, app.clock)
    factory.pin(27).drive_high()                      # door open: the controller refuses
    assert "relay: refused: door is open" in t.run("test relay")
    factory.pin(27).drive_low()                       # door closed
    screen = t.run("test relay")
    assert "relay released and read back" in screen and "relay test passed" in screen
    assert "lockout: none" in t.run("status")
    assert "no lockout" in t.run("reset lockout")
    factory.pin(23).drive_low()                       # tamper switch trips a lockout ...
    factory.pin(23).drive_high()
    assert "lockout: tamper" in t.run("status")
    assert "lockout (tamper) cleared" in t.run("reset lockout forced by forklift, checked")
    assert "lockout: none" in t.run("status")
    types = [e.type for e in app.svc.recent_events(50)]
    assert "door.self_test" in types and "door.lockout_reset" in types
    assert "console.selftest" in types


def test_door_config_edit_uses_the_door_apps_validation(door):
    app, _factory, path, DoorConfig = door
    t = console_for(path, DoorTarget(app.ctl, DoorConfig), app.svc, app.clock)
    assert "unknown key in door" in t.run("set door.nosuch 1")
    t.run("set log.level debug")
    assert "committed version 2" in t.run("commit")
    assert load_config(path, DoorConfig).log.level == "debug"


# ----------------------------------------------------------------------------- freezer


@pytest.fixture
def freezer(tmp_path):
    from storeedge.firmware.common.service import DeviceService
    from storeedge.firmware.freezer.app import FreezerApp
    from storeedge.firmware.freezer.config import FreezerConfig, build_rules
    from storeedge.firmware.freezer.wiring import make_bus
    data = freezer_dict(tmp_path)
    path = tmp_path / "fz.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = config_from_dict(data, FreezerConfig)
    clock = SimulatedClock()
    rules = build_rules(cfg.freezer)
    bus = make_bus(cfg.freezer, rules, clock)
    svc = DeviceService(cfg, clock=clock, app="freezer")
    app = FreezerApp(rules, bus, svc, clock, cfg.freezer.haccp.path)
    yield app, bus, svc, clock, path, FreezerConfig
    svc.close()
    bus.close()


def test_freezer_sensor_test_fault_alarm_and_ack(freezer):
    from storeedge.drivers.onewire import Fault
    app, bus, svc, clock, path, FreezerConfig = freezer
    t = console_for(path, FreezerTarget(app, FreezerConfig), svc, clock)
    screen = t.run("test sensors")
    assert f"top {ROM_TOP}: -" in screen and "sensor test passed: 2 probe(s) read" in screen
    bus.inject(ROM_DAIRY, Fault.POWER_ON)              # 85 degC power-on reads, forever
    for _ in range(240):                               # 20 min of the app's own loop
        app.step()
        clock.advance(5)
    screen = t.run("test sensors")
    assert "FAULT" in screen and "sensor test FAILED: 1 of 2" in screen
    [alarm] = app.alarms()
    assert "ACTIVE" in t.run("status")
    assert "(open alarms: " + alarm.id in t.run("ack nope replaced probe")
    assert f"alarm {alarm.id} acknowledged" in t.run(f"ack {alarm.id} probe cable reseated")
    assert app.alarms()[0].acked_by == "console"
    acked = [e.body for e in svc.recent_events(100, "freezer.alarm")
             if e.body.get("action") == "acked"]
    assert acked and acked[0]["ack_note"] == "probe cable reseated"


# ----------------------------------------------------------------------------- checkout


def test_checkout_camera_and_scanner_self_tests(tmp_path, service, clock, config_path):
    from storeedge.drivers.camera import open_camera
    camera = open_camera("synthetic", seed=1)
    target = CheckoutTarget(DeviceConfig, camera=camera, scanner_url="loop://",
                            scan_wait_s=0.5)           # real clock: waits 0.5 s for a scan
    target.inject = b"]E04006381333931\r"          # loop:// hands the scan straight back
    t = console_for(config_path, target, service, clock)
    screen = t.run("test camera")
    assert "camera synthetic: 10 frames at" in screen and "camera test passed" in screen
    screen = t.run("test scanner")
    assert "scanner read '4006381333931'" in screen and "scanner test passed" in screen
    target.inject = None                               # nobody scans
    screen = t.run("test scanner")
    assert "scanner: no scan within 0.5 s" in screen and "scanner test FAILED" in screen
    assert [e.body["passed"] for e in service.recent_events(20, "console.selftest")] == [
        True, True, False]
    nothing = CheckoutTarget(DeviceConfig)
    t2 = console_for(config_path, nothing, service, clock)
    assert "no camera configured" in t2.run("test camera")
    assert "no scanner port configured" in t2.run("test scanner")


# ----------------------------------------------------------------------------- standalone


def test_standalone_console_refuses_hardware_commands_with_the_reason(config_path, service,
                                                                      clock):
    t = console_for(config_path, StandaloneTarget("dock_door", DeviceConfig), service, clock)
    assert "runs inside the dock_door app" in t.run("test relay")
    assert "runs inside the dock_door app" in t.run("reset lockout")
    assert "'test camera' is not available on a dock_door" in t.run("test camera")
    assert "'ack' is not available" in t.run("ack a b")


# ----------------------------------------------------------------------------- embedded


def test_console_embedded_in_the_door_app_on_a_pty(door):
    from helpers.console_rig import PtyTerminal
    from storeedge.firmware.console.embed import EmbeddedConsole
    app, factory, path, DoorConfig = door
    write_secret_file(os.path.join(os.path.dirname(path), "console.secret"), SECRET, **CHEAP)
    master, slave = os.openpty()
    console = EmbeddedConsole.start(port_url=os.ttyname(slave), config_path=str(path),
                                    service=app.svc, target=DoorTarget(app.ctl, DoorConfig),
                                    clock=app.clock)
    term = PtyTerminal(master)
    try:
        term.send(b"\r")
        term.expect("storeedge console - door-1")
        term.send(SECRET.encode() + b"\r")
        term.expect("door-1> ")
        factory.pin(27).drive_low()
        term.send(b"t r\r")
        term.expect("relay test passed")
    finally:
        console.stop()
        os.close(slave)
        os.close(master)
    assert not console.thread.is_alive()
    assert "console.login" in [e.type for e in app.svc.recent_events(50)]
