"""Gateway benchmark: durable ingest with group commit vs one transaction per event, and
backlog drain with live traffic.

Part 1 (interleaved rounds, medians): events/s through the gateway's screen + durable store
(fsync before the PUBACK callback), several devices in parallel, versus the naive baseline a
user would write first: one SQLite transaction per event with ``synchronous=FULL``.

Part 2: a gateway store pre-filled with N queued events of one device (default 1,000,000) is
drained through real processes -- Mosquitto, ``storeedge gateway``, Mosquitto,
``storeedge store-server`` -- while a live device sends events through the same gateway;
reports the drain rate and the live events' latency (event time to store commit), p50/p99.

Parts 2 and 3 run twice in one process run: TLS off (plain listeners, ``security.insecure``)
and TLS on (the store PKI, client certificates, per-identity ACLs, sealed events checked by
the store server), keys ``*_tls``.  Part 3 (``durable_eps_broker``/``durable_eps_tls``):
several device clients publish as fast as QoS 1 allows into the in-store broker and the
``storeedge gateway`` process commits every event (timed until its watermarks cover all).

    python bench/gateway.py [--quick] [--backlog N]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from storeedge.brokerproc import Mosquitto, subscribe_acked
from storeedge.config import config_from_dict, write_config_atomic
from storeedge.core_events import SimCounter
from storeedge.events import Envelope, format_ts, parse_ts
from storeedge.ingest import Screen
from storeedge.firmware.common.service import DeviceService
from storeedge.settings import DeviceConfig
from storeedge.firmware.gateway.store import GatewayStore, Incoming
from storeedge.pki import StorePKI, derive_e2e_key
from storeedge.seal import seal

STORE = "s0001"
RELAY = json.loads(os.environ.get("BENCH_RELAY", "{}"))  # relay settings to try


def make_messages(n: int, devices: int, start: int = 1) -> list[tuple[str, bytes]]:
    """``n`` (topic, payload) pairs spread over ``devices`` devices, seqs from ``start``."""
    boot = str(uuid.uuid4())
    out = []
    for i in range(n):
        dev = f"dev-{i % devices}"
        seq = start + i // devices
        env = Envelope(dev, "sim", STORE, boot, seq, format_ts(time.time()), "sim.counter", 2,
                       {"n": i, "pad": "x" * 64})
        out.append((env.topic, env.to_json()))
    return out


def run_ours(workdir: Path, messages) -> float:
    """Events/s: screen + group-committed durable store, PUBACK callbacks after commit."""
    store = GatewayStore(str(workdir / f"ours-{uuid.uuid4().hex}.db"))
    screen = Screen()
    acked = threading.Semaphore(0)
    t0 = time.perf_counter()
    for topic, payload in messages:
        store.submit(Incoming(screen.check(topic, payload), payload),
                     lambda _t: acked.release())
    for _ in messages:
        acked.acquire()
    elapsed = time.perf_counter() - t0
    store.close()
    return len(messages) / elapsed


def run_baseline(workdir: Path, messages) -> float:
    """Events/s: parse, then one transaction (fsync) per event -- the naive relay."""
    conn = sqlite3.connect(workdir / f"base-{uuid.uuid4().hex}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE events (dev TEXT, seq INTEGER, payload BLOB, "
                 "PRIMARY KEY (dev, seq))")
    t0 = time.perf_counter()
    for _topic, payload in messages:
        env = Envelope.from_json(payload)
        conn.execute("BEGIN")
        conn.execute("INSERT OR IGNORE INTO events VALUES (?,?,?)", (env.dev, env.seq, payload))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(messages) / elapsed


def bench_ingest(workdir: Path, rounds: int, n_ours: int, n_base: int) -> dict:
    ours, base = [], []
    for r in range(rounds):
        ours.append(run_ours(workdir, make_messages(n_ours, 16, start=1)))
        base.append(run_baseline(workdir, make_messages(n_base, 16, start=1)))
        print(f"round {r + 1}/{rounds}: ours {ours[-1]:,.0f} ev/s, baseline {base[-1]:,.0f} ev/s",
              flush=True)
    return {"durable_eps": round(statistics.median(ours)),
            "baseline_eps": round(statistics.median(base)),
            "ratio_vs_baseline": round(statistics.median(ours) / statistics.median(base), 1)}


# ----------------------------------------------------------------------------- drain


def prefill(db_path: Path, n: int, key: bytes | None = None) -> None:
    """A gateway store holding ``n`` events of ``dev-backlog``, none confirmed by the store
    (sealed with ``key``, the device's end-to-end key, when given)."""
    store = GatewayStore(str(db_path))
    store.close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    boot, now = str(uuid.uuid4()), time.time()
    chunk = 50_000
    for lo in range(1, n + 1, chunk):
        rows = []
        for seq in range(lo, min(n, lo + chunk - 1) + 1):
            env = Envelope("dev-backlog", "sim", STORE, boot, seq, format_ts(now), "sim.counter",
                           2, {"n": seq, "pad": "x" * 64})
            raw = env.to_json() if key is None else seal(key, env.to_json())
            rows.append(("dev-backlog", seq, 2, "sim.counter", env.ts, now, raw))
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", rows)
        print(f"prefill: {min(n, lo + chunk - 1):,}/{n:,} queued events", flush=True)
    conn.execute("INSERT INTO devices (dev, kind, store, wm, store_wm) VALUES "
                 "('dev-backlog', 'sim', ?, ?, 0)", (STORE, n))
    conn.commit()
    conn.close()


def _proc(argv: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "storeedge", *argv],
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"))


def _store_wm(db: Path, dev: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        row = conn.execute("SELECT wm FROM devices WHERE dev=?", (dev,)).fetchone()
        conn.close()
        return row[0] if row else 0
    except sqlite3.Error:
        return 0


def _live_latencies(db: Path) -> list[float]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    rows = conn.execute("SELECT ts, received FROM events WHERE dev='dev-live' "
                        "AND type='sim.counter'").fetchall()
    conn.close()
    return [(received - parse_ts(ts)) * 1000.0 for ts, received in rows]


class Stack:
    """Both brokers, TLS + ACL from a fresh store PKI (``tls``) or plain and insecure."""

    def __init__(self, workdir: Path, tls: bool):
        self.workdir, self.tls = workdir, tls
        self.pki = StorePKI.init(workdir / "pki", STORE) if tls else None
        kw = {"pki": self.pki} if tls else {"insecure": True}
        self.down = Mosquitto(workdir / "down", role="in_store", **kw)
        self.up = Mosquitto(workdir / "up", role="store", **kw)
        self.down.start()
        self.up.start()

    def link(self, broker: Mosquitto, ident: str, kind: str) -> dict:
        """Link settings of ``ident`` on ``broker`` (enrolled on demand when TLS is on)."""
        base = broker.link(ident, kind) if self.tls else {"url": str(broker.url)}
        return {**base, "backoff_min_s": 0.1, "backoff_max_s": 2.0}

    def security(self, ident: str, store_server: bool = False) -> dict:
        """``security`` section: the bundle's keys (device/gateway) or the master (store)."""
        if not self.tls:
            return {"insecure": True}
        if store_server:
            return {"e2e_master": str(self.pki.e2e_master),
                    "command_key": str(self.pki.command_key)}
        bundle = self.pki.bundle_dir(ident)
        return {"e2e_key": str(bundle / "e2e.key"), "command_pub": str(bundle / "command.pub")}

    def key(self, dev: str) -> bytes | None:
        """``dev``'s end-to-end key (None without TLS: events go unsealed)."""
        if not self.tls:
            return None
        return derive_e2e_key(self.pki.e2e_master.read_bytes(), STORE, dev)

    def client(self, ident: str):
        """A raw paho client publishing as device ``ident`` on the in-store broker."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        if self.tls:
            return self.down.client(ident, "sim")
        return mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def gateway(self, db: Path) -> subprocess.Popen:
        write_config_atomic(self.workdir / "gw.yaml", {
            "device": {"id": "gw-1", "kind": "gateway", "store": STORE},
            "link": self.link(self.down, "gw-1", "gateway"),
            "upstream": self.link(self.up, "gw-1", "gateway"),
            "relay": {"db_path": str(db), **RELAY}, "security": self.security("gw-1"),
            "log": {"level": "warning"}})
        return _proc(["gateway", "--config", str(self.workdir / "gw.yaml")],
                     self.workdir / "gw.log")

    def store_server(self, i: int, db: Path) -> subprocess.Popen:
        sid = f"store-{i}"
        write_config_atomic(self.workdir / f"st{i}.yaml", {
            "server": {"id": sid, "db": f"sqlite:///{db}"},
            "link": self.link(self.up, sid, "store_server"),
            "security": self.security(sid, store_server=True), "log": {"level": "warning"}})
        return _proc(["store-server", "--config", str(self.workdir / f"st{i}.yaml")],
                     self.workdir / f"st{i}.log")

    def live_device(self) -> DeviceService:
        return DeviceService(config_from_dict({
            "device": {"id": "dev-live", "kind": "sim", "store": STORE},
            "link": self.link(self.down, "dev-live", "sim"),
            "outbox": {"path": str(self.workdir / "live.db")},
            "security": self.security("dev-live"), "log": {"level": "warning"}}, DeviceConfig))

    def stop(self) -> None:
        self.down.stop()
        self.up.stop()


def _stop_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _wait_drain(st_db: Path, backlog: int, t0: float) -> float:
    """Seconds from ``t0`` until the store holds the whole backlog (progress every 5 s)."""
    last_report = 0.0
    while True:
        wm = _store_wm(st_db, "dev-backlog")
        now = time.monotonic()
        if now - last_report > 5:
            print(f"drain: {wm:,}/{backlog:,} stored, {wm / (now - t0):,.0f} ev/s", flush=True)
            last_report = now
        if wm >= backlog:
            return time.monotonic() - t0
        if now - t0 > 1800:
            raise RuntimeError(f"drain did not finish in 30 min ({wm} of {backlog})")
        time.sleep(0.2)


def bench_drain(workdir: Path, backlog: int, live_rate: float, instances: int = 1,
                tls: bool = False) -> dict:
    """Drain a prefilled gateway store through real processes with live traffic alongside."""
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir, tls)
    try:
        return _drain(stack, backlog, live_rate, instances)
    finally:
        stack.stop()


def _drain(stack: Stack, backlog: int, live_rate: float, instances: int) -> dict:
    gw_db, st_db = stack.workdir / "gateway.db", stack.workdir / "store.db"
    prefill(gw_db, backlog, stack.key("dev-backlog"))
    procs = [stack.store_server(i, st_db) for i in range(instances)]
    time.sleep(1.0)
    t0 = time.monotonic()
    procs.append(stack.gateway(gw_db))
    live = stack.live_device()
    try:
        while _store_wm(st_db, "dev-backlog") == 0:      # the gateway is up on both sides
            if time.monotonic() - t0 > 60:
                raise RuntimeError("the gateway forwarded nothing in 60 s (see gw.log)")
            time.sleep(0.05)
        live.start()
        stop = threading.Event()
        producer = threading.Thread(target=_produce, args=(live, live_rate, stop), daemon=True)
        producer.start()
        try:
            drain_s = _wait_drain(st_db, backlog, t0)
        finally:
            stop.set()
            producer.join(5)
            time.sleep(2.0)
    finally:
        live.close()
        _stop_all(procs)
    lat = sorted(_live_latencies(st_db))
    sfx = "_tls" if stack.tls else ""
    return {f"drain_eps{sfx}": round(backlog / drain_s), f"drain_s{sfx}": round(drain_s, 1),
            f"live_events{sfx}": len(lat), f"live_p50_ms{sfx}": round(_pct(lat, 50), 1),
            f"live_p99_ms{sfx}": round(_pct(lat, 99), 1)}


def _produce(live: DeviceService, rate: float, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        live.emit(SimCounter(n=n))
        n += 1
        stop.wait(1.0 / rate)


# ----------------------------------------------------------------------------- broker ingest


def _gateway_wms(db: Path) -> dict[str, int]:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        rows = dict(conn.execute("SELECT dev, wm FROM devices").fetchall())
        conn.close()
        return rows
    except sqlite3.Error:
        return {}


def _publish_all(client, port: int, messages: list[tuple[str, bytes]]) -> None:
    """Connect and publish ``messages`` at QoS 1 (up to 1,000 in flight), waiting for all."""
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


def bench_broker_ingest(workdir: Path, n: int, devices: int, tls: bool) -> dict:
    """Events/s from device clients through the in-store broker into the gateway's store."""
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir, tls)
    try:
        return _broker_ingest(stack, workdir / "gateway.db", n // devices, devices)
    finally:
        stack.stop()


def _broker_ingest(stack: Stack, gw_db: Path, per_dev: int, devices: int) -> dict:
    msgs = {f"dev-{d}": [] for d in range(devices)}
    for topic, payload in make_messages(per_dev * devices, devices):
        dev = topic.split("/")[4]
        key = stack.key(dev)
        msgs[dev].append((topic, payload if key is None else seal(key, payload)))
    clients = {dev: stack.client(dev) for dev in msgs}
    gateway = stack.gateway(gw_db)
    try:
        _wait_subscribed(stack, gw_db)
        t0 = time.monotonic()
        threads = [threading.Thread(target=_publish_all, args=(clients[d], stack.down.port, m))
                   for d, m in msgs.items()]
        for t in threads:
            t.start()
        while True:
            wms = _gateway_wms(gw_db)
            if all(wms.get(dev, 0) >= per_dev for dev in msgs):
                break
            if time.monotonic() - t0 > 600:
                raise RuntimeError(f"broker ingest did not finish in 10 min: {wms}")
            time.sleep(0.02)
        elapsed = time.monotonic() - t0
        for t in threads:
            t.join(30)
    finally:
        _stop_all([gateway])
    eps = per_dev * devices / elapsed
    print(f"broker ingest ({'TLS' if stack.tls else 'plain'}): {eps:,.0f} ev/s", flush=True)
    return {f"durable_eps_{'tls' if stack.tls else 'broker'}": round(eps)}


def _wait_subscribed(stack: Stack, gw_db: Path, timeout: float = 60.0) -> None:
    """Publish a warm-up event until the gateway has stored it (so it is subscribed)."""
    client = stack.client("dev-warm")
    client.connect("127.0.0.1", stack.down.port)
    client.loop_start()
    (topic, payload), = make_messages(1, 1)
    topic, key = topic.replace("dev-0", "dev-warm"), stack.key("dev-warm")
    payload = payload.replace(b'"dev-0"', b'"dev-warm"')
    payload = payload if key is None else seal(key, payload)
    deadline = time.monotonic() + timeout
    try:
        while "dev-warm" not in _gateway_wms(gw_db):
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway stored nothing in 60 s (see gw.log)")
            client.publish(topic, payload, qos=1)
            time.sleep(0.2)
    finally:
        client.loop_stop()
        client.disconnect()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (CI smoke)")
    parser.add_argument("--backlog", type=int, default=None, help="queued events to drain")
    parser.add_argument("--live-rate", type=float, default=50.0, help="live events/s")
    parser.add_argument("--store-instances", type=int, default=1,
                        help="store-server processes on one shared subscription")
    args = parser.parse_args(argv)
    backlog = args.backlog or (50_000 if args.quick else 1_000_000)
    rounds, n_ours, n_base = (3, 5000, 300) if args.quick else (5, 40_000, 1500)
    n_broker = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory(prefix="se-bench-gw-", dir=os.environ.get("TMPDIR")) as d:
        workdir = Path(d)
        result = bench_ingest(workdir, rounds, n_ours, n_base)
        for tls in (False, True):
            tag = "tls" if tls else "plain"
            result.update(bench_broker_ingest(workdir / f"ingest-{tag}", n_broker, 8, tls))
            result.update(bench_drain(workdir / f"drain-{tag}", backlog, args.live_rate,
                                      args.store_instances, tls))
        result["store_instances"] = args.store_instances
        result["backlog_events"] = backlog
        result["tls_vs_plain_drain"] = round(result["drain_eps_tls"] / result["drain_eps"], 2)
    result["quick"] = args.quick
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
