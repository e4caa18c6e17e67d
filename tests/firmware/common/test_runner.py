"""The one runner: an app's ``main`` as a real process (systemd notifications, SIGTERM, exit
codes), subcommand parsing, and a failed build that releases the device service."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from helpers.stack import device_dict, gateway_dict, write_yaml
from storeedge.config import load_config
from storeedge.firmware.checkout.config import CheckoutConfig
from storeedge.cmdline import find_subcommand, run_subcommand
from storeedge.firmware.common.outbox import Identity, Outbox
from storeedge.firmware.common.runner import EventSink, WatchdogSink
from storeedge.firmware.common.service import DeviceService

LANE = {"camera": {"type": "synthetic", "fps": 10}, "pos": {"type": "synthetic"},
        "detector": {"type": "none"}}


@pytest.fixture
def notify_socket(tmp_path):
    """A datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    yield sock, path
    sock.close()


def _start(kind: str, config, notify_path: str, log_path) -> subprocess.Popen:
    """``storeedge <kind> --config <config>`` as systemd would start it."""
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="200000",
               PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "storeedge", kind, "--config",
                                 str(config)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)


def _notices_until(sock, wanted: str, limit: int = 200) -> list[str]:
    got: list[str] = []
    while wanted not in got and len(got) < limit:
        got.append(sock.recv(256).decode())
    return got


def _stop(proc: subprocess.Popen, log_path) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("no orderly stop within 30 s:\n" + log_path.read_text())


def test_checkout_main_notifies_systemd_and_stops_in_order(broker_factory, tmp_path,
                                                           notify_socket):
    """READY once the lane runs, WATCHDOG from the lane's loop (through its sink), SIGTERM
    ends it with 0 and the outbox holds the service's device.started."""
    broker = broker_factory("in", role="in_store")
    doc = device_dict("lane-1", broker.url, tmp_path, kind="checkout")
    doc["checkout"] = LANE
    config = write_yaml(tmp_path / "lane.yaml", doc)
    sock, path = notify_socket
    log_path = tmp_path / "lane.log"
    proc = _start("checkout", config, path, log_path)
    try:
        first = _notices_until(sock, "READY=1")
        assert first[-1] == "READY=1" and "WATCHDOG=1" not in first
        assert "WATCHDOG=1" in _notices_until(sock, "WATCHDOG=1")
    finally:
        code = _stop(proc, log_path)
    assert code == 0, log_path.read_text()
    cfg = load_config(str(config), CheckoutConfig)
    box = Outbox(cfg.outbox, Identity("lane-1", "checkout", cfg.device.store))
    try:
        started = box.recent(5, "device.started")
    finally:
        box.close()
    assert [e.body["app"] for e in started] == ["checkout"]


def test_gateway_main_heartbeats_through_the_runner(broker_factory, tmp_path, notify_socket):
    """The gateway no longer calls sd_notify itself: READY, then WATCHDOG every half
    WatchdogSec from its liveness sink."""
    down = broker_factory("in", role="in_store")
    up = broker_factory("up", role="store")
    config = write_yaml(tmp_path / "gw.yaml", gateway_dict(down.url, up.url, tmp_path))
    sock, path = notify_socket
    log_path = tmp_path / "gw.log"
    proc = _start("gateway", config, path, log_path)
    try:
        assert _notices_until(sock, "READY=1")[-1] == "READY=1"
        beats = 0
        while beats < 3:
            beats += sock.recv(256).decode() == "WATCHDOG=1"
    finally:
        code = _stop(proc, log_path)
    assert code == 0, log_path.read_text()


def test_a_failing_build_exits_1_on_one_line_and_releases_the_outbox(tmp_path, capsys):
    from storeedge.firmware.checkout.main import main
    doc = device_dict("lane-2", "mqtt://127.0.0.1:1", tmp_path, kind="checkout")
    doc["checkout"] = {**LANE, "camera": {"type": "replay",
                                          "source": str(tmp_path / "no-such.npz")}}
    config = write_yaml(tmp_path / "lane.yaml", doc)
    assert main(["--config", str(config)]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("storeedge checkout: ")]
    assert len(lines) == 1 and "no-such.npz" in lines[0] and "Traceback" not in err
    cfg = load_config(str(config), CheckoutConfig)
    svc = DeviceService(cfg)            # the outbox was closed: it opens again at once
    svc.close()


def test_subcommands_are_found_after_the_common_options():
    names = ("status", "probes")
    assert find_subcommand(["status", "--config", "g.yaml"], names) == \
        ("status", ["--config", "g.yaml"])
    assert find_subcommand(["--config", "f.yaml", "probes", "--no-measure"], names) == \
        ("probes", ["--config", "f.yaml", "--no-measure"])
    assert find_subcommand(["--config", "probes"], names) == (None, ["--config", "probes"])
    assert find_subcommand(["--config", "f.yaml", "sedpub1:x"], names)[0] is None
    assert find_subcommand([], names) == (None, [])
    seen = []
    assert run_subcommand(["status", "-v"], {"status": lambda rest: seen.append(rest) or 3}) == 3
    assert seen == [["-v"]]
    assert run_subcommand(["--config", "x"], {"status": lambda rest: 0}) is None


def test_the_sinks_implement_the_protocol(tmp_path):
    from helpers.sinks import RecordingSink
    svc = DeviceService(load_config_dict(tmp_path))
    try:
        assert isinstance(svc, EventSink)
    finally:
        svc.close()
    assert isinstance(RecordingSink(), EventSink)
    with pytest.raises(TypeError, match="no outbox"):
        WatchdogSink().emit(object())


def load_config_dict(tmp_path):
    from storeedge.config import config_from_dict
    from storeedge.settings import DeviceConfig
    return config_from_dict(device_dict("dev-p", "mqtt://127.0.0.1:1", tmp_path), DeviceConfig)

