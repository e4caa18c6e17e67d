"""Gateway benchmark: durable ingest with group commit vs one transaction per event, and
backlog drain with live traffic.

Part 1 (interleaved rounds, medians): events/s through the gateway's screen + durable store
(fsync before the PUBACK callback), several devices in parallel, versus the naive baseline a
user would write first: one SQLite transaction per event with ``synchronous=FULL``.

Part 2: a gateway store pre-filled with N queued events of one device (default 1,000,000) is
drained through real processes -- Mosquitto, ``storeedge gateway``, Mosquitto,
``storeedge store-server`` -- while a live device sends events through the same gateway;
reports the drain rate and the live events' latency (event time to store commit), p50/p99.

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

from storeedge.firmware.common.brokerproc import Mosquitto, subscribe_acked
from storeedge.firmware.common.config import config_from_dict, write_config_atomic
from storeedge.firmware.common.core_events import SimCounter
from storeedge.firmware.common.events import Envelope, format_ts, parse_ts
from storeedge.firmware.common.ingest import Screen
from storeedge.firmware.common.service import DeviceService
from storeedge.firmware.common.settings import DeviceConfig
from storeedge.firmware.gateway.store import GatewayStore, Incoming

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


def prefill(db_path: Path, n: int) -> None:
    """A gateway store holding ``n`` events of ``dev-backlog``, none confirmed by the store."""
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
            rows.append(("dev-backlog", seq, 2, "sim.counter", env.ts, now, env.to_json()))
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


def _wait_online(port: int, gateway_id: str, timeout: float = 30.0) -> None:
    """Wait for the gateway's retained ``online`` state (its session now exists)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    online = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: b"online" in m.payload and online.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribe_acked(client, f"se/v1/{STORE}/gateway/{gateway_id}/state")
    try:
        if not online.wait(timeout):
            raise RuntimeError("the gateway did not come online")
    finally:
        client.loop_stop()
        client.disconnect()


def bench_drain(workdir: Path, backlog: int, live_rate: float, instances: int = 1) -> dict:
    down, up = Mosquitto(workdir / "down"), Mosquitto(workdir / "up")
    down.start()
    up.start()
    gw_db, st_db = workdir / "gateway.db", workdir / "store.db"
    prefill(gw_db, backlog)
    link = {"backoff_min_s": 0.1, "backoff_max_s": 2.0}
    write_config_atomic(workdir / "gw.yaml", {
        "device": {"id": "gw-1", "kind": "gateway", "store": STORE},
        "link": {"url": down.url, **link}, "upstream": {"url": up.url, **link},
        "relay": {"db_path": str(gw_db), **RELAY}, "log": {"level": "warning"}})
    stores = []
    for i in range(instances):
        write_config_atomic(workdir / f"st{i}.yaml", {
            "server": {"id": f"store-{i}", "db": f"sqlite:///{st_db}"},
            "link": {"url": up.url, **link}, "log": {"level": "warning"}})
        stores.append(_proc(["store-server", "--config", str(workdir / f"st{i}.yaml")],
                            workdir / f"st{i}.log"))
    time.sleep(1.0)
    t0 = time.monotonic()
    gateway = _proc(["gateway", "--config", str(workdir / "gw.yaml")], workdir / "gw.log")
    _wait_online(down.port, "gw-1")
    live = DeviceService(config_from_dict({
        "device": {"id": "dev-live", "kind": "sim", "store": STORE},
        "link": {"url": down.url, **link},
        "outbox": {"path": str(workdir / "live.db")}}, DeviceConfig))
    live.start()
    stop = threading.Event()
    sent = [0]

    def produce():
        while not stop.is_set():
            live.emit(SimCounter(n=sent[0]))
            sent[0] += 1
            stop.wait(1.0 / live_rate)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    last_report = 0.0
    try:
        while True:
            wm = _store_wm(st_db, "dev-backlog")
            now = time.monotonic()
            if now - last_report > 5:
                print(f"drain: {wm:,}/{backlog:,} stored, {wm / (now - t0):,.0f} ev/s", flush=True)
                last_report = now
            if wm >= backlog:
                break
            if now - t0 > 1800:
                raise RuntimeError(f"drain did not finish in 30 min ({wm} of {backlog})")
            time.sleep(0.2)
        drain_s = time.monotonic() - t0
    finally:
        stop.set()
        producer.join(5)
        time.sleep(2.0)
        live.close()
        for p in [gateway, *stores]:
            p.terminate()
            p.wait(20)
        down.stop()
        up.stop()
    lat = sorted(_live_latencies(st_db))
    return {"drain_eps": round(backlog / drain_s), "drain_s": round(drain_s, 1),
            "backlog_events": backlog, "store_instances": instances, "live_events": len(lat),
            "live_p50_ms": round(_pct(lat, 50), 1), "live_p99_ms": round(_pct(lat, 99), 1)}


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
    with tempfile.TemporaryDirectory(prefix="se-bench-gw-", dir=os.environ.get("TMPDIR")) as d:
        workdir = Path(d)
        result = bench_ingest(workdir, rounds, n_ours, n_base)
        result.update(bench_drain(workdir, backlog, args.live_rate, args.store_instances))
    result["quick"] = args.quick
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
