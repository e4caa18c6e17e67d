"""Errors for people: each expected failure is one line saying what and how to fix it (no
traceback), with its exit code; what must reach the log does, at the right level."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.onewire import Fault
from storeedge.brokerproc import free_port
from storeedge.config import config_from_dict
from storeedge.firmware.common.service import DeviceService
from storeedge.settings import DeviceConfig
from storeedge.firmware.dock_door.app import service_sink
from storeedge.firmware.dock_door.store import AuditRecord
from storeedge.plan import plan
from storeedge.server.db import Row, open_store_db

from helpers.events import Publisher, envelope
from helpers.seals import sealed_json
from helpers.stack import device_dict, event_path, gateway_dict, wait_for, write_yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = """\
store: {id: s0042}
gateway: {id: gw-1, broker_port: PORT}
store_server: {id: store-1, broker_port: PORT2}
devices:
  - {id: lane-1, kind: checkout}
  - id: fz-1
    kind: freezer
    console: true
    freezer: {units: {u1: {probes: {top: 28-00000a1b2c3d}}}}
  - {id: door-1, kind: dock_door}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A planned one-machine store whose brokers are not running (nothing listens)."""
    root = tmp_path_factory.mktemp("errors")
    man = root / "store.yaml"
    man.write_text(MANIFEST.replace("PORT2", str(free_port())).replace("PORT", str(free_port())))
    plan(man, root / "out", local=True)
    return root / "out"


def _run(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storeedge", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PYTHONUNBUFFERED="1", **env))


def _one_line(stderr: str) -> str:
    """The last stderr line, after checking it is the only error and has no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines, "nothing on stderr"
    return lines[-1]


def _edit(src: Path, dst: Path, old: str, new: str) -> Path:
    text = src.read_text()
    assert old in text, old
    dst.write_text(text.replace(old, new))
    return dst


def test_busy_outbox_names_the_holder_pid(store, tmp_path):
    cfg = str(store / "devices" / "door-1" / "config.yaml")
    first = subprocess.Popen([sys.executable, "-m", "storeedge", "door", "--config", cfg],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
    lock = store / "data" / "door-1" / "outbox.db.lock"
    try:
        assert wait_for(lambda: lock.exists() and lock.read_text().strip() == str(first.pid),
                        60)
        second = _run("door", "--config", cfg)
    finally:
        first.terminate()
        first.wait(20)
    line = _one_line(second.stderr)
    assert second.returncode == 1
    assert f"is in use by another process, PID {first.pid} (" in line
    assert "storeedge dock_door" in line
    assert "stop that one first, or give this one another outbox.path" in line


def test_missing_scanner_port_is_one_line(store, tmp_path):
    cfg = _edit(store / "devices" / "door-1" / "config.yaml", tmp_path / "door.yaml",
                "door:\n", "door:\n  scanner: {url: /dev/ttyNOPE9}\n")
    res = _run("door", "--config", str(cfg))
    line = _one_line(res.stderr)
    assert res.returncode == 1
    assert line.startswith("storeedge dock_door: ") and "/dev/ttyNOPE9" in line
    assert "check the path or port named in the config" in line


def test_bad_console_port_is_one_line(store):
    res = _run("console", "--port", "/dev/ttyNOPE9", "--config",
               str(store / "devices" / "fz-1" / "config.yaml"))
    line = _one_line(res.stderr)
    assert res.returncode == 1 and "cannot open serial port '/dev/ttyNOPE9'" in line


def test_unreachable_broker_logged_with_host_port_and_next_retry(store):
    cfg = store / "devices" / "door-1" / "config.yaml"
    port = cfg.read_text().split("mqtts://127.0.0.1:")[1].split("\n")[0]
    proc = subprocess.Popen([sys.executable, "-m", "storeedge", "door", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if len([ln for ln in lines if "cannot reach the broker" in ln]) >= 2:
                break
    finally:
        proc.terminate()
        proc.wait(20)
    reach = [ln for ln in lines if "cannot reach the broker" in ln]
    assert len(reach) == 2, "".join(lines)
    assert f"cannot reach the broker at 127.0.0.1:{port} (link.url); next try in 0.5 s" in reach[0]
    assert "next try in 1.0 s" in reach[1] and "check that it runs" in reach[1]


@pytest.mark.parametrize("app,device,old,new,words", [
    ("door", "door-1", "gpio_backend: mock", "gpio_backend: zzz",
     "door.gpio_backend (line {}): 'zzz' is not one of: lgpio, rpigpio, native, mock"),
    ("door", "door-1", "door:\n", "door:\n  camera: {backend: picamra2}\n",
     "door.camera.backend (line {}): 'picamra2' is not one of: libcamera, picamera2, replay, synthetic"),
    ("checkout", "lane-1", "type: synthetic\n    main_width", "type: picamra2\n    main_width",
     "checkout.camera.type (line {}): 'picamra2' is not one of: picamera2, libcamera, v4l2"),
    ("freezer", "fz-1", ":8883\n", ":99999\n",
     "link.url (line {}): port 99999 is outside 1..65535"),
])
def test_backends_and_ports_checked_by_validate_config(store, tmp_path, app, device, old, new,
                                                       words):
    src = store / "devices" / device / "config.yaml"
    if old == ":8883\n":
        old = ":" + src.read_text().split("mqtts://127.0.0.1:")[1].split("\n")[0] + "\n"
    cfg = _edit(src, tmp_path / "c.yaml", old, new)
    bad = words.split("'")[1] if "'" in words else "99999"
    line_no = next(i for i, ln in enumerate(cfg.read_text().splitlines(), 1) if bad in ln)
    res = _run(app, "--config", str(cfg), "--validate-config")
    line = _one_line(res.stderr)
    assert res.returncode == 1 and res.stdout == ""
    assert words.format(line_no) in line, line


def test_duplicate_device_id_detected_in_log_and_gateway_status(broker_factory, tmp_path,
                                                                caplog):
    caplog.set_level(logging.ERROR, logger="storeedge.link")
    with event_path(broker_factory, tmp_path) as (down, up, relay, _store):
        svcs = []
        for side in ("a", "b"):
            (tmp_path / side).mkdir()
            cfg = config_from_dict(device_dict("twin-1", down.url, tmp_path / side),
                                   DeviceConfig)
            svc = DeviceService(cfg, app="sim")
            svc.start()
            svcs.append(svc)
        try:
            assert wait_for(lambda: "session taken over" in caplog.text, 60), caplog.text
            # what the twin's own seq 1 (other boot, other content) looks like at the gateway
            # when it gets through between two take-overs
            assert wait_for(lambda: _held(tmp_path / "gateway.db", "twin-1") >= 1, 30)
            pub = Publisher(down.url)
            try:
                twin = envelope("twin-1", 1, 1)
                pub.send(twin.topic, sealed_json(twin, down.url))
            finally:
                pub.close()
            gw_cfg = write_yaml(tmp_path / "gw.yaml", gateway_dict(down.url, up.url, tmp_path))
            status = []

            def flagged() -> bool:
                status.append(_run("gateway", "status", "--config", str(gw_cfg)))
                return "DUPLICATE ID? twin-1" in status[-1].stdout

            assert wait_for(flagged, 60), (status[-1].stdout, status[-1].stderr)
        finally:
            for svc in svcs:
                svc.close()
    assert "another client uses client id se-s0042-twin-1" in caplog.text
    assert "is a second device running with this device.id?" in caplog.text


def _held(db: Path, dev: str) -> int:
    from storeedge.firmware.gateway.store import status_report
    try:
        reports, _rejects = status_report(str(db))
    except Exception:          # noqa: BLE001 - no store file yet
        return 0
    return next((r.wm for r in reports if r.dev == dev), 0)


def test_door_grants_and_denials_logged_at_info(store, tmp_path, caplog):
    cfg = config_from_dict(device_dict("door-9", "mqtt://127.0.0.1:1", tmp_path, "dock_door"),
                           DeviceConfig)
    svc = DeviceService(cfg, app="door")
    caplog.set_level(logging.INFO, logger="storeedge.firmware.dock_door.app")
    try:
        sink = service_sink(svc)
        sink(AuditRecord(1, "door.denied", time.time(), {
            "reason": "expired", "detail": "window ended", "source": "scanner",
            "text_sha": "ab" * 16, "cred_id": "0" * 24, "vendor": "acme", "po": "PO-1",
            "chain": {"i": 1, "prev": "0" * 64, "h": "1" * 64, "t": time.time()}}))
        assert svc.outbox.last_seq >= 1
    finally:
        svc.close()
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert any("door.denied reason=expired detail=window ended vendor=acme po=PO-1 "
               "source=scanner" in r.getMessage() for r in infos), caplog.text


def test_freezer_alarms_logged_at_info(tmp_path, caplog):
    from helpers.freezer_rig import ROMS, freezer_config_dict
    from storeedge.firmware.freezer.app import FreezerApp
    from storeedge.firmware.freezer.config import FreezerConfig, build_rules, storage_of
    from storeedge.firmware.freezer.wiring import make_bus

    class Sink:
        def emit(self, body, ts=None):
            pass

    cfg = config_from_dict(freezer_config_dict(tmp_path), FreezerConfig)
    rules, clock = build_rules(cfg.freezer), SimulatedClock()
    bus = make_bus(cfg.freezer, rules, clock)
    caplog.set_level(logging.INFO, logger="storeedge.firmware.freezer.app")
    try:
        app = FreezerApp(rules, bus, Sink(), clock, storage_of(cfg.freezer))
        bus.inject(ROMS["bottom"], Fault.POWER_ON)
        for _ in range(120):
            app.step()
            clock.advance(5.0)
    finally:
        bus.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO
             and r.getMessage().startswith("alarm ")]
    assert any(" raised: " in ln and "sensor_fault power_on_85c" in ln and "probe bottom" in ln
               for ln in lines), caplog.text


def test_counts_refuses_a_database_that_does_not_exist(tmp_path):
    db = tmp_path / "nope" / "store.db"
    for sub in ("counts", "events"):
        res = _run("store-server", sub, "--db", f"sqlite:///{db}")
        line = _one_line(res.stderr)
        assert res.returncode == 1 and res.stdout == ""
        assert f"no store database at {db}" in line and "four slashes" in line
    assert not db.exists() and not db.parent.exists()


def test_store_server_events_lists_with_filters(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    db = open_store_db(url)
    rows = [Row("fz-1", 1, "freezer", "s0042", "device.started", 1, "2026-01-01T00:00:01Z",
                100.0, '{"app":"freezer"}'),
            Row("fz-1", 2, "freezer", "s0042", "freezer.alarm", 0, "2026-01-01T00:00:02Z",
                200.0, '{"probe":"top"}'),
            Row("door-1", 1, "dock_door", "s0042", "door.granted", 1, "2026-01-01T00:00:03Z",
                300.0, '{"po":"PO-1"}')]
    txn = db.transactions()
    txn.begin()
    db.insert_events(rows)
    txn.commit()
    db.close()
    everything = _run("store-server", "events", "--db", url)
    assert everything.returncode == 0
    listed = everything.stdout.splitlines()
    assert [ln.split()[1] for ln in listed] == ["door-1", "fz-1", "fz-1"]
    one = _run("store-server", "events", "--db", url, "--dev", "fz-1", "--type", "freezer.*",
               "--json")
    assert one.stdout.splitlines() == ['{"dev":"fz-1","seq":2,"kind":"freezer","type":'
                                       '"freezer.alarm","ts":"2026-01-01T00:00:02Z",'
                                       '"body":{"probe":"top"}}']
    since = _run("store-server", "events", "--db", url, "--since", "150", "--kind", "freezer")
    assert [ln.split()[2] for ln in since.stdout.splitlines()] == ["2"]
    none = _run("store-server", "events", "--db", url, "--dev", "nobody")
    assert none.stdout.strip() == "(no stored events match)"
