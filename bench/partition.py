"""Drain after an uplink partition, through a link with delay, beside the same store without one.

A whole store runs in network namespaces (tests/helpers/netstore.py: TLS + ACL brokers, the
gateway and the store server as real processes, simulated devices on their own hosts). The
uplink gateway -> store broker goes through a relay adding ``--delay-ms`` each way.

* partition run: the uplink is partitioned while ``devices`` devices commit ``per_device``
  events each (the backlog; produced fast, so a long partition fits in a short run), and
  healed once the gateway holds all of it; a live device emits 20 events/s all along.
  Measured: time from the heal until the store holds the whole backlog (``drain_s``, with
  ``drain_eps``), of which ``reconnect_s`` until the first backlog event reaches the store
  (the gateway's reconnect: TCP retries and the link's backoff), the rate from there to the
  last one (``transfer_eps``), and the live device's latency (store receive time - event
  time) for events made during that transfer.
* baseline run: the same store with no partition and no backlog, every device at a live
  rate (``--live-rate`` events/s each, a store's devices emit tens of events/s in total)
  and the live device at 20 events/s, for ``--baseline-s`` seconds: the live latency a
  drain is compared with.

The devices' backlog phase is not timed: the gateway is not asked to ingest a flood and
forward live events through it at the same time (no real store produces that), and the heal
waits until the gateway has committed every backlog event, so the drain is the drain.

Last line: one JSON object with ``drain_s``, ``drain_eps``, ``reconnect_s``,
``transfer_eps``, ``live_p50_ms``, ``live_p99_ms``,
``baseline_live_p50_ms``, ``baseline_live_p99_ms``, ``live_p99_ratio`` (partition /
baseline), ``backlog_events``, ``ingest_eps`` (devices -> gateway while partitioned).
Needs root, ``ip netns``, tc and iptables; prints ``{"skipped": reason}`` otherwise.

    python bench/partition.py [--quick]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.netrig import NetRig, unavailable  # noqa: E402
from helpers.netstore import NetStore  # noqa: E402
from helpers.stack import wait_for  # noqa: E402
from storeedge.pki import StorePKI  # noqa: E402

LIVE = "dev-live"
LIVE_RATE = 20.0


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _latencies(db: Path, since: float, until: float) -> list[float]:
    """Live device latencies (s) of events made in ``[since, until]`` (epoch s)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT ts, received FROM events WHERE dev=?", (LIVE,)).fetchall()
    finally:
        conn.close()
    return sorted(r - _ts(t) for t, r in rows if since <= _ts(t) <= until)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))] * 1000.0


def _run(pki: StorePKI, workdir: Path, args, partition: bool) -> dict:
    with NetRig(tag="p" if partition else "b") as rig:
        net = NetStore.build(rig, pki, workdir, uplink_delay_ms=args.delay_ms)
        try:
            return (_partition_run if partition else _baseline_run)(net, args)
        finally:
            net.close()


def _gateway_holds(net: NetStore, names: list[str]) -> bool:
    """The gateway has committed everything the named devices committed."""
    path = net.tmp / "gateway.db"
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            marks = dict(conn.execute("SELECT dev, wm FROM devices").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    committed = net.committed()
    return all(marks.get(n, 0) >= committed[n].stop - 1 > 0 for n in names)


def _partition_run(net: NetStore, args) -> dict:
    """Backlog behind a partition, heal once the gateway holds it, time the drain."""
    names = [f"dev-{i}" for i in range(args.devices)]
    for name in [*names, LIVE]:
        net.add_device(name)
    net.start()
    net.uplink.partition()
    net.start_device(LIVE, rate=LIVE_RATE, count=10**7)
    started = time.time()
    for name in names:
        net.start_device(name, rate=args.rate, count=args.per_device)
    backlog_ok = net.wait_devices_except(LIVE, timeout=args.per_device / args.rate + 600)
    held = wait_for(lambda: net.running() and _gateway_holds(net, names), 600, 0.2)
    healed = time.time()
    net.uplink.heal()
    drained = net.wait_marks(names, timeout=1800)
    end = time.time()
    back, last = _stored_span(net.store_db(), names, healed)
    return {"backlog_ok": backlog_ok and held, "drained": drained, "drain_s": end - healed,
            "ingest_s": healed - started, "reconnect_s": back - healed,
            "transfer_s": last - back, "live": _latencies(net.store_db(), back, last),
            "events": args.devices * args.per_device}


def _stored_span(db: Path, names: list[str], since: float) -> tuple[float, float]:
    """Store receive times (epoch s) of the first and last backlog event stored after
    ``since``: the uplink is back (reconnected) at the first one."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(names))
        first, last = conn.execute(f"SELECT MIN(received), MAX(received) FROM events WHERE "
                                   f"dev IN ({marks}) AND received>?", (*names, since)).fetchone()
    finally:
        conn.close()
    return (first or since), (last or since)


def _baseline_run(net: NetStore, args) -> dict:
    """No partition, no backlog: every device at its live rate, the live device at 20/s."""
    names = [f"dev-{i}" for i in range(args.devices)]
    for name in [*names, LIVE]:
        net.add_device(name)
    net.start()
    net.start_device(LIVE, rate=LIVE_RATE, count=10**7)
    for name in names:
        net.start_device(name, rate=args.live_rate, count=10**7)
    # measured once every device is connected and delivering (a device's first events wait
    # for its process to start and its TLS connection: that is start-up, not steady state)
    wait_for(lambda: net.running() and all(net.watermarks().get(n, 0) > 0
                                           for n in [*names, LIVE]), 120, 0.2)
    time.sleep(1.0)
    since = time.time()
    net.running()
    time.sleep(args.baseline_s)
    until = time.time()
    net.wait_marks([LIVE], timeout=60)
    return {"live": _latencies(net.store_db(), since, until)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="uplink delay each way")
    parser.add_argument("--live-rate", type=float, default=1.0,
                        help="baseline: events/s of each device (the live device: 20)")
    parser.add_argument("--baseline-s", type=float, default=None,
                        help="baseline: seconds measured (default 15, --quick 8)")
    args = parser.parse_args(argv)
    args.devices, args.per_device, args.rate = (5, 2000, 400) if args.quick else (20, 5000, 250)
    if args.baseline_s is None:
        args.baseline_s = 8.0 if args.quick else 15.0
    why = unavailable()
    if why:
        print(json.dumps({"skipped": why}))
        return 0
    with tempfile.TemporaryDirectory(prefix="se-partition-") as tmp:
        tmp = Path(tmp)
        pki = StorePKI.init(tmp / "pki", "s0042")
        (tmp / "p").mkdir()
        (tmp / "b").mkdir()
        part = _run(pki, tmp / "p", args, partition=True)
        base = _run(pki, tmp / "b", args, partition=False)
    out = {"backlog_events": part["events"], "devices": args.devices,
           "uplink_delay_ms": args.delay_ms, "drained": part["drained"],
           "backlog_ok": part["backlog_ok"],
           "drain_s": round(part["drain_s"], 2),
           "drain_eps": round(part["events"] / part["drain_s"]) if part["drain_s"] else None,
           "reconnect_s": round(part["reconnect_s"], 2),
           "transfer_eps": (round(part["events"] / part["transfer_s"])
                            if part["transfer_s"] > 0 else None),
           "ingest_eps": round(part["events"] / part["ingest_s"]),
           "live_p50_ms": round(_pct(part["live"], 0.50), 1),
           "live_p99_ms": round(_pct(part["live"], 0.99), 1),
           "live_events": len(part["live"]),
           "baseline_live_p50_ms": round(_pct(base["live"], 0.50), 1),
           "baseline_live_p99_ms": round(_pct(base["live"], 0.99), 1),
           "baseline_live_events": len(base["live"]), "quick": args.quick}
    out["live_p99_ratio"] = (round(out["live_p99_ms"] / out["baseline_live_p99_ms"], 2)
                             if out["baseline_live_p99_ms"] else None)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
