"""docs/store-setup.md, followed end to end on one machine from the worked example manifest:
plan (--local), both brokers with TLS + ACL, store server, gateway, one device of each kind on
simulated hardware; each device's events are seen stored. Also: docs/config-reference.md is
current."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from storeedge.docgen import generate
from storeedge.brokerproc import free_port, mosquitto_binary

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "store-12-lanes.yaml"
DOC = ROOT / "docs" / "store-setup.md"
DEVICES = {"lane-01": "checkout", "fz-01": "freezer", "door-1": "door"}


def test_config_reference_is_current():
    text = (ROOT / "docs" / "config-reference.md").read_text()
    assert text == generate(), "stale: run storeedge config-doc > docs/config-reference.md"
    for key in ("`relay.devices`", "`upstream.url`", "`server.db`", "`web.port`",
                "`devices[].freezer.units.<name>.probes`", "`door.gpio_backend`"):
        assert key in text


def test_doc_shows_the_commands_this_test_runs():
    doc = DOC.read_text()
    for cmd in ("storeedge store plan docs/examples/store-12-lanes.yaml",
                "mosquitto -c OUT/brokers/in-store/mosquitto.conf",
                "mosquitto -c OUT/brokers/store/mosquitto.conf",
                "storeedge store-server --config OUT/store-server/config.yaml",
                "storeedge gateway --config OUT/gateway/config.yaml",
                "storeedge checkout --config OUT/devices/lane-01/config.yaml",
                "STOREEDGE_GPIO=mock storeedge freezer --config OUT/devices/fz-01/config.yaml",
                "storeedge dock_door --config OUT/devices/door-1/config.yaml",
                "storeedge store-server counts --db sqlite:///OUT/data/store-server/store.db",
                "storeedge gateway status --config OUT/gateway/config.yaml",
                "storeedge store-server events --db sqlite:///OUT/data/store-server/store.db "
                "--dev door-1",
                "config-reference.md"):
        assert cmd in doc, cmd


def _ports(text: str) -> tuple[str, dict[str, int]]:
    ports = {"broker_port: 8883": free_port(), "broker_port: 8884": free_port(),
             "web_port: 8080": free_port()}
    for old, port in ports.items():
        assert old in text
        text = text.replace(old, f"{old.split(':')[0]}: {port}")
    return text, ports


class _Procs:
    """Every process the walk-through starts, stopped (and logs kept) at the end."""

    def __init__(self, folder: Path):
        self.folder, self.procs = folder, []

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **env)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                stdin=subprocess.DEVNULL)
        self.procs.append((name, proc))
        return proc

    def dead(self) -> list[str]:
        return [f"{n} exited {p.returncode}: {(self.folder / f'{n}.log').read_text()[-800:]}"
                for n, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _storeedge(*args: str) -> list[str]:
    return [sys.executable, "-m", "storeedge", *args]


def _stored(db: Path) -> dict[str, set[str]]:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = con.execute("SELECT dev, type FROM events").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()
    out: dict[str, set[str]] = {}
    for dev, etype in rows:
        out.setdefault(dev, set()).add(etype)
    return out


def test_walkthrough_sees_every_device_kind_stored(tmp_path):
    manifest = tmp_path / "store.yaml"
    text, ports = _ports(EXAMPLE.read_text())
    manifest.write_text(text)
    out = tmp_path / "OUT"
    planned = subprocess.run(_storeedge("store", "plan", str(manifest), str(out), "--local"),
                             capture_output=True, text=True, timeout=300,
                             stdin=subprocess.DEVNULL)
    assert planned.returncode == 0, planned.stderr
    procs = _Procs(tmp_path)
    db = out / "data" / "store-server" / "store.db"
    try:
        for name in ("in-store", "store"):
            procs.start(f"broker-{name}", [mosquitto_binary(), "-c",
                                           str(out / "brokers" / name / "mosquitto.conf")])
        procs.start("store-server", _storeedge("store-server", "--config",
                                               str(out / "store-server" / "config.yaml")))
        procs.start("gateway", _storeedge("gateway", "--config",
                                          str(out / "gateway" / "config.yaml")))
        for dev, app in DEVICES.items():
            procs.start(dev, _storeedge(app, "--config",
                                        str(out / "devices" / dev / "config.yaml")),
                        STOREEDGE_GPIO="mock")
        # Every device's first event (device.started) must reach the store. It may come after
        # a later one: an event forwarded before the store server's first subscription reaches
        # nobody and is re-sent by the gateway after relay.resend_timeout_s (seen at load 8).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not procs.dead():
            if all("device.started" in _stored(db).get(dev, ()) for dev in DEVICES):
                break
            time.sleep(0.5)
        assert not procs.dead(), procs.dead()
        stored = _stored(db)
        assert set(DEVICES) <= set(stored), (stored, (tmp_path / "gateway.log").read_text()[-2000:])
        for dev in DEVICES:
            assert "device.started" in stored[dev], (dev, stored)
        counts = subprocess.run(_storeedge("store-server", "counts", "--db", f"sqlite:///{db}"),
                                capture_output=True, text=True, timeout=60)
        assert counts.returncode == 0
        for dev in DEVICES:
            assert re.search(rf"^{dev}\s", counts.stdout, re.M), counts.stdout
        listed = subprocess.run(_storeedge("store-server", "events", "--db", f"sqlite:///{db}",
                                           "--dev", "door-1", "--json"),
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and '"type":"device.started"' in listed.stdout
        assert all('"dev":"door-1"' in ln for ln in listed.stdout.splitlines())
        page = urllib.request.urlopen(f"http://127.0.0.1:{ports['web_port: 8080']}/login",
                                      timeout=10)
        assert page.status == 200
    finally:
        procs.stop()
