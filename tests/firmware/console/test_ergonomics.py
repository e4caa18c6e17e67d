"""Console ergonomics over a real pty pair: '?', Tab completion, history, per-kind help,
unwrapped JSON events."""
from __future__ import annotations

import json
import os
import threading

import pytest
from helpers.console_rig import SECRET, PtyTerminal, Terminal

from storeedge.drivers.serial import open_port


@pytest.fixture
def pty_console(make_console, target):
    master, slave = os.openpty()
    path = os.ttyname(slave)
    port = open_port(path)
    stop = threading.Event()
    thread = threading.Thread(target=make_console(target, port_name=path).run, args=(port, stop),
                              kwargs=dict(poll_s=0.05), daemon=True)
    thread.start()
    term = PtyTerminal(master)
    term.send(b"\r")
    term.expect("Password: ")
    term.send(SECRET.encode() + b"\r")
    term.expect("fz-1> ")
    yield term
    stop.set()
    thread.join(5)
    port.close()
    os.close(slave)
    os.close(master)


def test_question_mark_lists_commands_and_keys(pty_console):
    pty_console.send(b"?")
    shown = pty_console.expect("fz-1> ")
    assert "commit" in shown and "status" in shown and "show" in shown
    pty_console.send(b"set bench.?")
    shown = pty_console.expect("fz-1> set bench.")
    for key in ("bench.threshold_c", "bench.mode", "bench.probes."):
        assert key in shown
    pty_console.send(b"mode ?")
    shown = pty_console.expect("fz-1> set bench.mode ")
    assert "normal" in shown and "defrost" in shown
    pty_console.send(b"\x15set bench.threshold_c ?")
    assert "-40..10 degC" in pty_console.expect("fz-1> set bench.threshold_c ")


def test_tab_completes_commands_keys_and_values(pty_console, config_path):
    pty_console.send(b"\x15se\tbench.thr\t-23\r")
    shown = pty_console.expect("fz-1*> ")
    assert "set bench.threshold_c -23" in shown
    assert "candidate: bench.threshold_c = -23.0" in shown
    pty_console.send(b"set bench.mode d\t\r")
    assert "candidate: bench.mode = defrost" in pty_console.expect("fz-1*> ")
    pty_console.send(b"set bench.enabled f\t\r")
    assert "candidate: bench.enabled = false" in pty_console.expect("fz-1*> ")
    pty_console.send(b"co\t")          # commit, commit confirmed, confirm: list the choices
    shown = pty_console.expect("fz-1*> co")
    assert "commit" in shown and "confirm" in shown
    pty_console.send(b"\x15comm\t\r")
    assert "committed version 2" in pty_console.expect("fz-1> ")


def test_arrow_keys_recall_history(pty_console):
    pty_console.send(b"set bench.threshold_c -21\r")
    pty_console.expect("fz-1*> ")
    pty_console.send(b"diff\r")
    pty_console.expect("fz-1*> ")
    pty_console.send(b"\x1b[A\x1b[A\x1b[B\r")        # up, up, down: 'diff' again
    shown = pty_console.expect("fz-1*> ")
    assert "~ bench.threshold_c: -20.0 -> -21.0" in shown
    pty_console.send(b"\x1b[A\x1b[A\x7f5\r")   # edit the recalled "set ... -21" to -25
    assert "candidate: bench.threshold_c = -25.0" in pty_console.expect("fz-1*> ")


def test_passwords_are_not_history_and_question_mark_is_a_secret_character(term):
    term.run("logout")
    out = term.type(b"a?b\x1b[A\r")
    assert "wrong secret" in out and "a?b" not in out
    assert "a?b" not in term.session.editor.history


def test_help_lists_only_what_this_kind_has(make_console, target, factory):
    from helpers.console_rig import make_target
    freezer = Terminal(make_console(target))
    freezer.login()
    text = freezer.run("help")
    assert "test sensors" in text and "\r\nack ALARM NOTE" in text
    assert "test relay" not in text and "reset lockout" not in text
    door = make_target("dock_door", factory, relay_pin=5, sense_pin=6, contact_pin=13)
    try:
        d = Terminal(make_console(door))
        d.login()
        text = d.run("help")
        assert "test relay" in text and "reset lockout" in text and "\r\nack " not in text
        assert "ack" not in d.type(b"a?")
    finally:
        door.close()


def test_events_json_is_never_wrapped(term, service):
    from storeedge.firmware.console.events import SelfTestRun
    service.emit(SelfTestRun("sensors", True, "x" * 200))
    out = term.run("events 1")
    line = next(ln for ln in out.split("\r\n") if "console.selftest" in ln)
    body = json.loads(line[line.index("{"):])
    assert body["detail"] == "x" * 200 and len(line) > 200
