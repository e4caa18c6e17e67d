"""``storeedge demo``: the whole store on one machine.

Starts two Mosquitto brokers (in-store and store side), ``storeedge store-server`` and
``storeedge gateway`` as real processes, a simulated counter device and every device app
whose ``spec.py`` names a demo (freezers, the dock door, a checkout lane), shows
events arriving at the store, and ends with a summary: events sent, stored, duplicates
dropped, gaps.

Secure by default: a store PKI is made in the demo folder (``pki/``), both brokers run TLS
with client certificates and the generated ACLs (storeedge.brokerconf), and every process
connects with its own identity. ``--insecure`` runs plain anonymous brokers (logged).

    storeedge demo --duration 60 [--insecure]
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from storeedge import apps
from storeedge.apps import AppSpec
from storeedge.drivers.clock import Clock, SystemClock
from storeedge.brokerproc import Mosquitto
from storeedge.config import config_from_dict, write_config_atomic
from storeedge.core_events import SimCounter
from storeedge.firmware.common.runner import AppRunner
from storeedge.settings import DeviceConfig
from storeedge.pki import StorePKI

log = logging.getLogger("storeedge.demo")
STORE = "s0042"
LINK = {"backoff_min_s": 0.2, "backoff_max_s": 2.0, "resend_timeout_s": 2.0}


@dataclass
class DemoContext:
    """What a device app's ``demo_devices(ctx)`` gets."""

    broker_url: str
    store: str
    workdir: str
    clock: Clock = field(default_factory=SystemClock)

    def device_config(self, kind: str, dev_id: str) -> DeviceConfig:
        """Common sections for one demo device (its outbox in the demo's folder).

        When ``broker_url`` is a TLS broker's URL (``Mosquitto.url``), the device gets its
        own certificate (enrolled on demand) and its bundle's command key and e2e key.
        """
        link, security = link_and_security(self.broker_url, dev_id, kind)
        return config_from_dict({
            "device": {"id": dev_id, "kind": kind, "store": self.store},
            "link": {**link, **LINK},
            "outbox": {"path": os.path.join(self.workdir, f"{dev_id}-outbox.db")},
            "security": security, "log": {"level": "warning"}}, DeviceConfig)


def link_and_security(url, dev_id: str, kind: str) -> tuple[dict, dict]:
    """``link`` and ``security`` sections of identity ``dev_id`` on the broker behind ``url``
    (plain and explicitly insecure when the broker is insecure or unknown)."""
    broker = getattr(url, "broker", None)
    if broker is None or broker.insecure:
        return {"url": str(url)}, {"insecure": True}
    bundle = broker.pki.bundle_dir(dev_id)
    link = broker.link(dev_id, kind)
    if kind == "store_server":
        return link, {"command_key": str(broker.pki.command_key),
                      "e2e_master": str(broker.pki.e2e_master)}
    return link, {"command_pub": str(bundle / "command.pub"), "e2e_key": str(bundle / "e2e.key")}


@dataclass
class CounterApp:
    """The demo's simulated counter: a numbered ``sim.counter`` event every ``period_s``
    seconds through the sink, then a heartbeat (a device app like the others, see
    :class:`~storeedge.firmware.common.runner.DeviceApp`)."""

    sink: Any
    period_s: float = 0.2
    sent: int = 0

    def run(self, stop: threading.Event) -> None:
        """Emit until ``stop`` is set."""
        while not stop.wait(self.period_s):
            self.sink.emit(SimCounter(n=self.sent))
            self.sent += 1
            self.sink.heartbeat()

    def serve_config(self, config_path: str, restart) -> None:
        """No live config."""
        return None


def build_counter(cfg: DeviceConfig, sink, clock, *, period_s: float = 0.2) -> CounterApp:
    """``build`` of the counter (:data:`COUNTER_SPEC`): ``period_s`` s between events."""
    return CounterApp(sink, period_s)


COUNTER_SPEC = AppSpec(kind="sim", package=__package__, title="Simulated counter",
                       summary="the demo's counter device", config="storeedge.settings:"
                       "DeviceConfig", build=f"{__name__}:build_counter", events=None,
                       demo=None)
"""The counter's declaration: the demo's own device, run like the apps' (not registered:
no ``storeedge sim`` command)."""


class CounterDevice:
    """The counter device in the demo: :class:`CounterApp` on the runner's AppRunner."""

    name = "sim-1"

    def __init__(self, ctx: DemoContext, period_s: float = 0.2):
        self.runner = AppRunner(COUNTER_SPEC, ctx.device_config("sim", self.name), ctx.clock,
                                parts={"period_s": period_s})

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()

    def summary(self) -> dict:
        return {"counter events": self.runner.app.sent if self.runner.app else 0}


def _load_app_devices(ctx: DemoContext) -> list:
    """The devices of every registered app that declares a demo (``AppSpec.demo``)."""
    devices = []
    for spec in apps.all_apps():
        if spec.demo_module is None:
            continue
        try:
            devices.extend(importlib.import_module(spec.demo_module).demo_devices(ctx))
        except Exception as exc:  # say which app is missing from the demo and why
            print(f"demo: the {spec.kind} app could not join the demo: "
                  f"{type(exc).__name__}: {exc}")
    return devices


class Demo:
    """Brokers, store server, gateway and devices in one folder."""

    def __init__(self, workdir: Path, insecure: bool = False):
        self.workdir = workdir
        pki = None
        if not insecure:
            pki_dir = workdir / "pki"
            pki = StorePKI(pki_dir) if (pki_dir / "ca.crt").exists() else \
                StorePKI.init(pki_dir, STORE)
        self.down = Mosquitto(workdir / "broker-instore", pki=pki, role="in_store",
                              insecure=insecure)
        self.up = Mosquitto(workdir / "broker-store", pki=pki, role="store", insecure=insecure)
        self.store_db = workdir / "store.db"
        self.procs: list[subprocess.Popen] = []
        self.devices: list = []

    def start(self) -> None:
        self.down.start()
        self.up.start()
        print(f"demo: in-store broker {self.down.url}, store broker {self.up.url}")
        ctx = DemoContext(self.down.url, STORE, str(self.workdir))
        self.devices = [CounterDevice(ctx)] + _load_app_devices(ctx)
        st_link, st_security = link_and_security(self.up.url, "store-1", "store_server")
        from storeedge.server.web.cli import demo_web
        web, self.page_text = demo_web(self.workdir, f"sqlite:///{self.store_db}",
                                       str(self.workdir / "door-1-store-key.pem"))
        self._spawn("store-server", {"server": {"id": "store-1",
                                                "db": f"sqlite:///{self.store_db}",
                                                "replay_after_s": 3.0},
                                     "link": {**st_link, **LINK}, "security": st_security,
                                     "web": web})
        print(self.page_text)
        down_link, gw_security = link_and_security(self.down.url, "gw-1", "gateway")
        up_link, _same = link_and_security(self.up.url, "gw-1", "gateway")
        self._spawn("gateway", {"device": {"id": "gw-1", "kind": "gateway", "store": STORE},
                                "link": {**down_link, **LINK},
                                "upstream": {**up_link, **LINK},
                                "relay": {"db_path": str(self.workdir / "gateway.db"),
                                          "devices": [self._dev_id(d) for d in self.devices]},
                                "security": gw_security})
        for device in self.devices:
            device.start()
            print(f"demo: started {device.name}")

    @staticmethod
    def _dev_id(device) -> str:
        return getattr(device, "dev_id", None) or device.name

    def _spawn(self, app: str, cfg: dict) -> None:
        path = self.workdir / f"{app}.yaml"
        write_config_atomic(path, cfg)
        log_file = open(self.workdir / f"{app}.log", "ab")
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "storeedge", app, "--config", str(path)],
            stdout=subprocess.DEVNULL, stderr=log_file))
        print(f"demo: started storeedge {app} (log: {self.workdir / f'{app}.log'})")

    def table(self) -> list[tuple]:
        """``(dev, kind, stored, watermark, duplicates, last type)`` from the store DB."""
        if not self.store_db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.store_db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(
                "SELECT d.dev, d.kind, (SELECT COUNT(*) FROM events e WHERE e.dev=d.dev AND "
                "e.placeholder=0), d.wm, d.duplicates, (SELECT type FROM events e WHERE "
                "e.dev=d.dev ORDER BY seq DESC LIMIT 1) FROM devices d ORDER BY d.dev").fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def stored_upto(self, upto: dict[str, int]) -> dict[str, int]:
        """Per device, the events (not placeholders) with ``seq <= upto[dev]`` the store holds."""
        if not self.store_db.exists():
            return {}
        conn = sqlite3.connect(f"file:{self.store_db}?mode=ro", uri=True, timeout=5)
        try:
            return {dev: conn.execute("SELECT COUNT(*) FROM events WHERE dev=? AND seq<=? AND "
                                      "placeholder=0", (dev, n)).fetchone()[0]
                    for dev, n in upto.items()}
        except sqlite3.Error:
            return {}
        finally:
            conn.close()

    def gaps(self) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.store_db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT dev, first_seq, last_seq, reason, resolved IS NOT NULL "
                                "FROM gaps").fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def stop(self) -> None:
        for device in self.devices:
            try:
                device.stop()
            except Exception as exc:
                print(f"demo: stopping {device.name}: {exc}")
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.down.stop()
        self.up.stop()


def _outbox_last_seq(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        row = conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        conn.close()
        return row[0] if row else 0
    except sqlite3.Error:
        return 0


def _print_table(rows: list[tuple]) -> None:
    print(f"  {'device':<14} {'kind':<10} {'stored':>7} {'watermark':>9} {'dups':>5}  last event")
    for dev, kind, stored, wm, dups, last in rows:
        print(f"  {dev:<14.14} {kind:<10.10} {stored:>7} {wm:>9} {dups:>5}  {last or '-'}")


def _sent(demo: Demo) -> dict[str, int]:
    return {p.name.split("-outbox.db")[0]: _outbox_last_seq(p)
            for p in demo.workdir.glob("*-outbox.db")}


def _drain(demo: Demo, timeout: float) -> dict[str, int]:
    """Wait until the store holds, without a hole, what every device had committed one poll
    (0.5 s) earlier; return those seqs per device: the summary counts exactly them.

    The devices are still running, so they commit more meanwhile: comparing what the store
    holds now with what was committed a poll ago settles as soon as delivery takes less than a
    poll, however busy the machine.  What is committed later is not counted.
    """
    target = _sent(demo)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        held = {r[0]: r[3] for r in demo.table()}
        if all(held.get(dev, 0) >= n for dev, n in target.items()):
            return target
        target = _sent(demo)
    print("demo: the store had not caught up after the run: see not_yet_stored below")
    return target


def _summary(demo: Demo, sent: dict[str, int]) -> dict:
    """Events sent (committed up to ``sent``) against what the store holds of them."""
    rows = {r[0]: r for r in demo.table()}
    stored = demo.stored_upto(sent)
    dups = sum(r[4] for r in rows.values())
    gaps = demo.gaps()
    open_gaps = [g for g in gaps if not g[4]]
    missing = {dev: max(0, n - rows[dev][3]) if dev in rows else n for dev, n in sent.items()}
    return {"events_sent": sum(sent.values()), "events_stored": sum(stored.values()),
            "duplicates_dropped": dups, "gaps_recorded": len(gaps), "gaps_open": len(open_gaps),
            "not_yet_stored": {d: m for d, m in missing.items() if m}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="storeedge demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run")
    parser.add_argument("--workdir", default=None, help="keep files here (default: temp)")
    parser.add_argument("--insecure", action="store_true",
                        help="plain anonymous brokers without TLS or ACL (not for a store LAN)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="storeedge-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"demo: files in {workdir}")
    demo = Demo(workdir, insecure=args.insecure)
    try:
        demo.start()
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
            print(f"demo: t={args.duration - max(0.0, end - time.monotonic()):.0f}s, "
                  "store server holds:")
            _print_table(demo.table())
    except KeyboardInterrupt:
        print("demo: interrupted")
    finally:
        sent = _drain(demo, timeout=20.0)
        summaries = {}
        for device in demo.devices:
            try:
                summaries[device.name] = device.summary()
            except Exception as exc:
                summaries[device.name] = {"error": str(exc)}
        demo.stop()
    _report(demo, summaries, sent)
    return 0


def _report(demo: Demo, summaries: dict, sent: dict[str, int]) -> None:
    print("demo: final state at the store server:")
    _print_table(demo.table())
    for name, summary in summaries.items():
        print(f"demo: {name}: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    result = _summary(demo, sent)
    print("demo: summary: " + ", ".join(f"{k}={v}" for k, v in result.items()))
