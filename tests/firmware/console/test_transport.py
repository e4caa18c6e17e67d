"""The console over real serial transports: a pty pair driven as a terminal, socket://, loop://,
and the `storeedge console` command itself in a subprocess on a pty."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml
from helpers.console_rig import CHEAP, SECRET, WAIT_S, PtyTerminal

from storeedge.drivers.serial import open_port
from storeedge.firmware.console.secret import write_secret_file

@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(slave)
    os.close(master)


def serve(console, port, out=None):
    stop = threading.Event()
    thread = threading.Thread(target=console.run, args=(port, stop),
                              kwargs=dict(poll_s=0.05, out=out), daemon=True)
    thread.start()
    return stop, thread


def converse(send, expect):
    """The same short conversation on every transport."""
    expect("Password: ")
    send(b"wrong-secret\r")
    expect("wrong secret")
    expect("Password: ")
    send(SECRET.encode() + b"\r")
    expect("fz-1> ")
    send(b"set bench.thr\x7freshold_c -24\r")         # typo fixed with DEL
    expect("candidate: bench.threshold_c = -24.0")
    send(b"junk that is cancelled\x03")
    expect("^C")
    send(b"diff\r")
    expect("~ bench.threshold_c: -20.0 -> -24.0")
    send(b"commit\r")
    expect("committed version 2 (was 1)")
    send(b"\x04")
    expect("Password: ")


def test_console_on_a_real_pty_pair(make_console, target, config_path, pty_pair, service):
    master, slave_path = pty_pair
    port = open_port(slave_path)          # the device side: pyserial sets the line raw
    stop, thread = serve(make_console(target, port_name=slave_path), port)
    term = PtyTerminal(master)
    try:
        term.send(b"\r")
        converse(term.send, term.expect)
    finally:
        stop.set()
        thread.join(5)
        port.close()
    assert yaml.safe_load(open(config_path))["bench"]["threshold_c"] == -24.0
    types = [e.type for e in service.recent_events(50, "console.")]
    assert types == ["console.login_failed", "console.login", "console.commit",
                     "console.logout"]


def test_console_over_socket_url(make_console, target, config_path):
    """socket://host:port (ser2net-style serial over TCP), a real bidirectional pyserial URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = open_port(f"socket://127.0.0.1:{listener.getsockname()[1]}")
    conn, _ = listener.accept()
    conn.settimeout(0.5)
    stop, thread = serve(make_console(target), port)
    screen = bytearray()

    def expect(text):
        deadline = time.monotonic() + WAIT_S
        while text.encode() not in screen:
            assert time.monotonic() < deadline, screen.decode()
            try:
                screen.extend(conn.recv(4096))
            except socket.timeout:
                pass
        del screen[:screen.index(text.encode()) + len(text)]

    try:
        conn.sendall(b"\r")
        converse(conn.sendall, expect)
    finally:
        stop.set()
        thread.join(5)
        port.close()
        conn.close()
        listener.close()
    assert yaml.safe_load(open(config_path))["bench"]["threshold_c"] == -24.0


def test_console_over_loop_urls(make_console, target, config_path):
    """loop:// echoes what is written, so one loop port per direction (keys in, screen out)."""
    keys, screen_port = open_port("loop://"), open_port("loop://", timeout=0.05)
    stop, thread = serve(make_console(target), keys, out=screen_port)
    screen = bytearray()

    def expect(text):
        deadline = time.monotonic() + WAIT_S
        while text.encode() not in screen:
            assert time.monotonic() < deadline, screen.decode()
            screen.extend(screen_port.read(4096))
        del screen[:screen.index(text.encode()) + len(text)]

    try:
        converse(keys.write, expect)
    finally:
        stop.set()
        thread.join(5)
    assert yaml.safe_load(open(config_path))["bench"]["threshold_c"] == -24.0


def test_storeedge_console_command_on_a_pty(tmp_path, pty_pair):
    """`storeedge console --port /dev/pts/N --config FILE` as a technician meets it."""
    master, slave_path = pty_pair
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(yaml.safe_dump({"device": {"id": "gw-1", "kind": "gateway", "store": "s0042"},
                                   "relay": {"db_path": str(tmp_path / "gateway.db")},
                                   "security": {"insecure": True}}))
    write_secret_file(tmp_path / "console.secret", SECRET, **CHEAP)
    proc = subprocess.Popen([sys.executable, "-m", "storeedge.cli", "console", "--port",
                             slave_path, "--config", str(cfg), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    term = PtyTerminal(master)
    try:
        term.send(b"\r")
        term.expect("storeedge console - gw-1")
        term.send(SECRET.encode() + b"\r")
        term.expect("gw-1> ")
        term.send(b"set link.keepalive_s 3\r")
        term.expect("link.keepalive_s: 3 is below the minimum 5 s (allowed 5..600 s)")
        term.send(b"set link.keepalive_s 45\rcommit\r")
        term.expect("committed version 2")
        term.send(b"st\r")
        term.expect("device: gw-1 (gateway) store s0042")
        term.send(b"logout\r")
        term.expect("Password: ")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert yaml.safe_load(cfg.read_text())["link"]["keepalive_s"] == 45
    assert (tmp_path / "console-outbox.db").exists()      # gateway: the console's own outbox


def test_cli_set_secret_and_errors(tmp_path):
    cfg = tmp_path / "d.yaml"
    cfg.write_text("device: {id: d-1, kind: gateway}\nsecurity: {insecure: true}\n")
    run = [sys.executable, "-m", "storeedge.cli", "console", "--config", str(cfg)]
    res = subprocess.run(run + ["--set-secret"], input=b"new-secret-1\nnew-secret-1\n",
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "console.secret").read_text()
    assert text.startswith("scrypt$16384$8$1$") and "new-secret-1" not in text
    res = subprocess.run(run + ["--set-secret"], input=b"aaaaaaaa1\nbbbbbbbb2\n",
                         capture_output=True, timeout=60)
    assert res.returncode == 1 and b"differ" in res.stderr
    res = subprocess.run(run + ["--port", "nosuch://x"], capture_output=True, timeout=60)
    assert res.returncode == 1 and b"not supported by pyserial" in res.stderr
    res = subprocess.run(run + ["--port", "loop://"], capture_output=True, timeout=60)
    assert res.returncode == 1 and b"echoes everything written to it" in res.stderr
    assert b"Traceback" not in res.stderr
    (tmp_path / "console.secret").unlink()
    res = subprocess.run(run + ["--port", "socket://127.0.0.1:9"], capture_output=True,
                         timeout=60)
    assert res.returncode == 1 and b"cannot read technician secret file" in res.stderr


def test_console_reopens_its_port_after_the_line_drops(config_path, target, service, clock,
                                                       stored_secret):
    """serve_port: the far end goes away (cable pulled); the console reconnects by itself."""
    from storeedge.firmware.console.console import ConsoleParts, serve_port

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT_S)
    url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
    stop = threading.Event()
    parts = ConsoleParts(config_path, target, service, clock, stored_secret, url)
    thread = threading.Thread(target=serve_port, args=(parts, stop), daemon=True)
    thread.start()
    try:
        for attempt in range(2):
            conn, _ = listener.accept()
            conn.settimeout(WAIT_S)
            seen = b""
            while b"Password: " not in seen:     # type once the banner shows, as a person
                seen += conn.recv(4096)
            conn.sendall(SECRET.encode() + b"\r")
            while b"logged in" not in seen:
                try:
                    seen += conn.recv(4096)
                except socket.timeout:
                    raise AssertionError(f"attempt {attempt}: {seen!r}") from None
            conn.close()                        # the line drops
    finally:
        stop.set()
        thread.join(10)
        listener.close()
    assert not thread.is_alive()
    reasons = [e.body["reason"] for e in service.recent_events(50, "console.logout")]
    assert reasons == ["disconnect", "disconnect"]   # line drop, then the stop: never left open


def test_standalone_console_is_a_device_of_its_own(tmp_path):
    """The app owns (and locks) its outbox; a standalone console gets its own id and outbox."""
    from storeedge.config import config_from_dict
    from storeedge.settings import DeviceConfig
    from storeedge.firmware.console.main import service_config

    app_cfg = config_from_dict({"device": {"id": "d-1", "kind": "sim"},
                                "security": {"insecure": True},
                                "outbox": {"path": str(tmp_path / "outbox.db")}}, DeviceConfig)
    con = service_config(app_cfg, str(tmp_path / "d.yaml"))
    assert con.device.id == "d-1-con" and con.device.kind == "sim"
    assert con.outbox.path == str(tmp_path / "outbox.db.console.db")
    assert con.link == app_cfg.link
