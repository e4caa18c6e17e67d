"""Drain after an uplink partition, through a link with delay, beside the same run without one.

A whole store runs in network namespaces (tests/helpers/netstore.py: TLS + ACL brokers, the
gateway and the store server as real processes, simulated devices on their own hosts). The
uplink gateway -> store broker goes through a relay adding ``--delay-ms`` each way.

* partition run: the uplink is partitioned while ``devices`` devices commit ``per_device``
  events each (the backlog), then healed; a live device keeps emitting 20 events/s all along.
  Measured: time from the heal until the store holds everything (drain), events/s of the
  drain, and the live device's latency (store receive time - event time) during the drain.
* baseline run: the same devices and events with no partition (the same store, fresh).

Last line: one JSON object with ``drain_s``, ``drain_eps``, ``live_p50_ms``, ``live_p99_ms``,
``baseline_live_p99_ms``, ``live_p99_ratio`` (partition / baseline), ``backlog_events``.
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
            return _scenario(net, args, partition)
        finally:
            net.close()


def _scenario(net: NetStore, args, partition: bool) -> dict:
    names = [f"dev-{i}" for i in range(args.devices)]
    for name in [*names, LIVE]:
        net.add_device(name)
    net.start()
    if partition:
        net.uplink.partition()
    net.start_device(LIVE, rate=LIVE_RATE, count=10**7)
    started = time.time()
    for name in names:
        net.start_device(name, rate=args.rate, count=args.per_device)
    backlog_done = net.wait_devices_except(LIVE, timeout=args.per_device / args.rate + 600)
    healed = time.time()
    if partition:
        net.uplink.heal()
    drained = net.wait_marks(names, timeout=1800)
    end = time.time()
    lat = _latencies(net.store_db(), healed if partition else started, end)
    return {"backlog_ok": backlog_done, "drained": drained, "drain_s": end - healed,
            "live": lat, "events": args.devices * args.per_device}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="uplink delay each way")
    args = parser.parse_args(argv)
    args.devices, args.per_device, args.rate = (5, 2000, 400) if args.quick else (20, 5000, 250)
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
           "drain_s": round(part["drain_s"], 2),
           "drain_eps": round(part["events"] / part["drain_s"]) if part["drain_s"] else None,
           "live_p50_ms": round(_pct(part["live"], 0.50), 1),
           "live_p99_ms": round(_pct(part["live"], 0.99), 1),
           "live_events": len(part["live"]),
           "baseline_catchup_s": round(base["drain_s"], 2),
           "baseline_live_p99_ms": round(_pct(base["live"], 0.99), 1),
           "quick": args.quick}
    out["live_p99_ratio"] = (round(out["live_p99_ms"] / out["baseline_live_p99_ms"], 2)
                             if out["baseline_live_p99_ms"] else None)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
