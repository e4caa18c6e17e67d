"""The issue's must-show list, end to end through real transports -- a pty pair driven as a
terminal and pyserial loop:// ports -- with the console's own port loop running the timers:
login and lockout, set/diff/commit, commit confirmed expiring into a rollback, rollback N, and
every self-test of every device kind on simulated hardware."""
from __future__ import annotations

import contextlib
import os
import threading

import pytest
import yaml
from helpers.console_rig import SECRET, LoopTerminal, PtyTerminal, make_target

from storeedge.drivers.serial import open_port


@contextlib.contextmanager
def connected(kind, console):
    """Run ``console`` on a fresh transport of ``kind``; yield the technician's terminal."""
    stop = threading.Event()
    if kind == "pty":
        master, slave = os.openpty()
        port, out, term = open_port(os.ttyname(slave)), None, PtyTerminal(master)
    else:
        term = LoopTerminal()
        port, out = term.keys, term.screen_port
    thread = threading.Thread(target=console.run, args=(port, stop),
                              kwargs=dict(poll_s=0.02, out=out), daemon=True)
    thread.start()
    try:
        term.send(b"\r")
        term.expect("Password: ")
        yield term
    finally:
        stop.set()
        thread.join(5)
        if kind == "pty":
            port.close()
            os.close(slave)
            os.close(master)


def login(term):
    term.send(SECRET.encode() + b"\r")
    term.expect("logged in")


def run(term, line, want):
    term.send(line.encode() + b"\r")
    return term.expect(want)


def threshold(config_path):
    return yaml.safe_load(open(config_path))["bench"]["threshold_c"]


@pytest.mark.parametrize("transport", ["pty", "loop"])
def test_door_scenario(transport, make_console, factory, clock, config_path, service):
    target = make_target("dock_door", factory)
    with connected(transport, make_console(target)) as term:
        for i in range(3):
            term.send(f"wrong-{i}\r".encode())
        term.expect("locked out for 30 s")
        term.send(SECRET.encode() + b"\r")
        term.expect("locked out: try again in 30 s")
        clock.advance(30)
        login(term)
        run(term, "set bench.threshold_c 99", "above the maximum 10 degC")
        run(term, "se bench.threshold_c -25", "not live until 'commit'")
        run(term, "diff", "~ bench.threshold_c: -20.0 -> -25.0")
        run(term, "commit", "committed version 2")
        run(term, "set bench.threshold_c -30", "candidate")
        run(term, "commit confirmed 1", "rolls back to version 2 in 1 min")
        assert threshold(config_path) == -30.0
        clock.advance(60)                            # the port loop's tick does the rollback
        term.expect("commit not confirmed in time: rolled back")
        assert threshold(config_path) == -25.0
        run(term, "history", "initial")
        run(term, "rollback 3", "~ bench.threshold_c: -25.0 -> -20.0")   # back to version 1
        run(term, "commit", "committed version 5")
        assert threshold(config_path) == -20.0
        run(term, "test relay", "relay test passed")
        factory.pin(22).drive_low()
        run(term, "test sensors", "door contact (GPIO22): closed")
        target.lockout = True
        run(term, "reset lockout", "door lockout cleared")
        term.send(b"\x04")
        term.expect("Password: ")
    types = [e.type for e in service.recent_events(100, "console.")]
    assert types.count("console.commit") == 4 and types.count("console.selftest") == 2
    target.close()


@pytest.mark.parametrize("transport", ["pty", "loop"])
def test_checkout_and_freezer_self_tests(transport, make_console, factory):
    lane = make_target("checkout", factory)
    with connected(transport, make_console(lane)) as term:
        login(term)
        run(term, "test camera", "camera test passed")
        run(term, "test scanner", "scanner test passed")
        run(term, "test relay", "'test relay' is not available on a checkout")
    lane.close()
    freezer = make_target("freezer", factory, relay_pin=5, sense_pin=6, contact_pin=13)
    freezer.alarms["high-temp"] = ""
    with connected(transport, make_console(freezer)) as term:
        login(term)
        run(term, "test sensors", "sensor test passed")
        run(term, "ack high-temp moved stock to ice2", "alarm high-temp acknowledged")
    assert freezer.alarms["high-temp"] == "moved stock to ice2"
    freezer.close()
