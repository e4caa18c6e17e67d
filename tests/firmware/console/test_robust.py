"""A console that cannot hang: self-echoing ports refused, write timeouts, a second SIGTERM
always exits."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from storeedge.drivers.serial import open_port
from storeedge.firmware.console.console import refuse_self_echoing, serve_port, ConsoleParts
from storeedge.firmware.console.exc import EchoingPort


def test_loop_url_is_refused_with_a_clear_message(target, config_path, service, clock,
                                                   stored_secret):
    with pytest.raises(EchoingPort, match="echoes everything written to it"):
        refuse_self_echoing("LOOP://")
    parts = ConsoleParts(config_path, target, service, clock, stored_secret, "loop://")
    with pytest.raises(EchoingPort):
        serve_port(parts, threading.Event())


def test_a_port_that_echoes_is_detected_not_read_as_passwords(make_console, target):
    """A port hearing its own output (here a loop port): the console stops with EchoingPort
    instead of typing its banner in as a wrong secret and locking itself out."""
    console = make_console(target)
    port = open_port("loop://")
    try:
        with pytest.raises(EchoingPort):
            console.run(port, threading.Event(), poll_s=0.05)
    finally:
        port.close()
    assert console.auth.failures == 0
    assert port.write_timeout == 5.0


def test_write_timeout_is_set_on_the_output_port(make_console, target):
    keys, screen = open_port("loop://"), open_port("loop://")
    stop = threading.Event()
    thread = threading.Thread(target=make_console(target).run, args=(keys, stop),
                              kwargs=dict(poll_s=0.05, out=screen), daemon=True)
    thread.start()
    stop.set()
    thread.join(5)
    assert screen.write_timeout == 5.0 and not thread.is_alive()
    keys.close()
    screen.close()


STUCK = """
import sys, time
from storeedge.cmdline import stop_event_on_signals
stop = stop_event_on_signals()
print("ready", flush=True)
stop.wait()
print("stopping (and hanging)", flush=True)
time.sleep(600)
"""


def test_second_sigterm_always_exits():
    proc = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline() == b"stopping (and hanging)\n"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert b"signal 15 again: exiting now" in err and b"Traceback" not in err
