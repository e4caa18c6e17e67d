"""The door app on simulated hardware (gpio_backend: mock): the contact starts closed and follows
the simulated door; the app serves the technician console (pty) and applies door timings live."""
from __future__ import annotations

import os
import time

import yaml

from storeedge.config import load_config
from storeedge.firmware.console.secret import write_secret_file
from storeedge.firmware.dock_door.config import DoorConfig
from helpers.door_rig import run

SECRET = "door-bench-secret"


def sim_config(tmp_path, pub_line, console_port):
    doc = {"device": {"id": "door-1", "kind": "dock_door", "store": "s0042"},
           "outbox": {"path": str(tmp_path / "outbox.db")},
           "security": {"insecure": True},
           "door": {"state_path": str(tmp_path / "door.db"), "gpio_backend": "mock",
                    "relay": {"pin": 5}, "contact": {"pin": 6}, "repeat_s": 0,
                    "trusted_keys": [pub_line], "console_port": console_port}}
    path = tmp_path / "door.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def wait(pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_simulated_door_grant_walk_through_and_console(tmp_path, capsys):
    from helpers.console_rig import PtyTerminal
    from helpers.door_app import DoorUnderTest
    key = str(tmp_path / "k.pem")
    _, pub, _ = run(["keygen", "--kid", "1", "--out", key], capsys)
    master, slave = os.openpty()
    path = sim_config(tmp_path, pub.strip(), os.ttyname(slave))
    write_secret_file(tmp_path / "console.secret", SECRET, n=2 ** 10, r=8, p=1)
    restarts = []
    app = DoorUnderTest(load_config(path, DoorConfig))
    try:
        assert app.ctl.status().door_closed                  # closed from boot
        app.start()
        app.serve_config(str(path), restarts.append)
        term = PtyTerminal(master)
        term.send(b"\r")
        term.expect("Password: ")
        term.send(SECRET.encode() + b"\r")
        term.expect("logged in")
        term.expect("door-1> ")
        term.send(b"set door.unlock_s 4\rcommit\r")
        assert "applied live: door.unlock_s" in term.expect("door-1*> ") + term.expect("door-1> ")
        assert app.ctl.p.logic.t.unlock_s == 4.0 and restarts == []
        now = int(time.time())
        _, code, _ = run(["issue", "--key", key, "--store", "s0042", "--door", "door-1",
                          "--vendor", "ACME", "--driver", "Dee", "--po", "PO-7",
                          "--from", str(now - 60), "--until", str(now + 600)], capsys)
        assert app.ctl.present(code.strip(), "serial").granted
        types = lambda: [e.type for e in app.svc.recent_events(50, "door.")]   # noqa: E731
        assert wait(lambda: "door.checkin" in types())       # the simulated driver walked in
        assert wait(lambda: app.ctl.status().door_closed)
        term.send(b"status\r")
        screen = term.expect("door-1> ")
        assert "lockout: none" in screen and "door: " in screen
        assert "door.lockout" not in types() and "door.held_open" not in str(types())
        term.send(b"set door.relay.pin 12\rcommit\r")
        assert "needs an app restart" in term.expect("door-1*> ") + term.expect("door-1> ")
        assert restarts == [["door.relay.pin"]]
    finally:
        app.stop()
        os.close(slave)
        os.close(master)
