"""Benchmark ``storeedge store plan``: a 3,000-device manifest planned from scratch, then
re-planned with no change, then with one device changed (target: < 10 s for the first plan).

Peer: what a store IT person would otherwise run per identity, the openssl CLI (key, CSR,
certificate signed by the store CA), timed on a sample of identities, interleaved with our
per-identity cost (the plan's time / identities). Medians over rounds; the last line printed
is one JSON object. ``plan_cpu_s`` is the plan's own CPU time: on a shared machine the wall
time also holds waiting for the disk (about 18,000 new files: 5 per identity in the PKI, one config per device; one sync) and for the CPU.
``fs_floor_s``: the same folders and files created bare (no crypto, no YAML), timed in
the same round: what the file system alone costs here.
Consoles (``consoles: true``) are left out: each console secret is an scrypt hash (n=2**14,
~0.1 s on a Pi 4), so 3,000 consoles add minutes; that cost is the hash's purpose.

    python bench/store_plan.py [--quick] [--devices N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from storeedge.plan import plan


def manifest_text(n: int) -> str:
    """A store with ``n`` devices: a third each of checkout, freezer, dock door."""
    lines = ["store: {id: s0042, timezone: Europe/Paris}",
             "gateway: {id: gw-1, host: 10.42.0.2}",
             "store_server: {id: store-1, host: 10.42.0.3}", "devices:"]
    for i in range(n):
        kind = ("checkout", "freezer", "dock_door")[i % 3]
        if kind == "checkout":
            lines.append(f"  - {{id: lane-{i}, kind: checkout, location: lane {i}}}")
        elif kind == "freezer":
            lines.append(f"  - {{id: fz-{i}, kind: freezer, freezer: {{units: {{u: "
                         f"{{probes: {{top: 28-{i:012x}}}}}}}}}}}")
        else:
            lines.append(f"  - {{id: door-{i}, kind: dock_door, door: {{relay_pin: 17}}}}")
    return "\n".join(lines) + "\n"


def _timed(fn, cpu: list | None = None) -> float:
    """Wall seconds of ``fn()``; its CPU seconds (this process) appended to ``cpu``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return time.perf_counter() - t0


def openssl_per_identity(ca_dir: Path, work: Path, count: int) -> float:
    """Seconds per identity with the openssl CLI (key + CSR + CA-signed certificate)."""
    t0 = time.perf_counter()
    for i in range(count):
        key, csr, crt = (work / f"d{i}.{ext}" for ext in ("key", "csr", "crt"))
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN=d{i}",
                        "-keyout", str(key), "-out", str(csr)], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA",
                        str(ca_dir / "ca.crt"), "-CAkey", str(ca_dir / "ca.key"),
                        "-CAcreateserial", "-days", "825", "-out", str(crt)], check=True,
                       capture_output=True)
    return (time.perf_counter() - t0) / count


def fs_floor(root: Path, identities: int) -> float:
    """Seconds to create what the PKI writes, bare: one folder and 5 small files per identity
    (no crypto, no YAML): the file system's floor under the plan's time on this machine."""
    t0 = time.perf_counter()
    for i in range(identities):
        sub = root / f"d{i}"
        sub.mkdir()
        for name in range(5):
            fd = os.open(sub / f"f{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, b"x" * 600)
            os.close(fd)
    return time.perf_counter() - t0


def one_round(n: int, sample: int, root: Path) -> dict:
    man = root / "store.yaml"
    man.write_text(manifest_text(n))
    out = root / "out"
    cpu: list[float] = []
    first = _timed(lambda: plan(man, out), cpu)
    again = _timed(lambda: plan(man, out))
    man.write_text(manifest_text(n).replace("lane-0, kind: checkout, location: lane 0",
                                            "lane-0, kind: checkout, location: lane zero"))
    one = _timed(lambda: plan(man, out))
    work = root / "openssl"
    work.mkdir()
    peer = openssl_per_identity(out / "pki", work, sample)
    identities = n + 2
    (root / "floor").mkdir()
    floor = fs_floor(root / "floor", identities)
    shutil.rmtree(root / "floor")
    shutil.rmtree(out)
    shutil.rmtree(work)
    return {"plan_s": first, "plan_cpu_s": cpu[0], "replan_nochange_s": again, "replan_one_change_s": one,
            "fs_floor_s": floor, "ours_per_identity_ms": first / identities * 1e3,
            "openssl_per_identity_ms": peer * 1e3}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="300 devices, 1 round")
    ap.add_argument("--devices", type=int, default=None)
    args = ap.parse_args(argv)
    n = args.devices or (300 if args.quick else 3000)
    rounds, sample = (1, 10) if args.quick else (3, 30)
    results = []
    for r in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
            res = one_round(n, sample, Path(tmp))
        results.append(res)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items()))
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    summary = {"bench": "store_plan", "devices": n, "rounds": rounds,
               **{k: round(v, 4) for k, v in med.items()},
               "openssl_over_ours_per_identity": round(
                   med["openssl_per_identity_ms"] / med["ours_per_identity_ms"], 2),
               "target_plan_s": 10.0, "target_met": med["plan_s"] < 10.0}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
