"""Dock door latency: frame arrival -> relay on, per stage, p50/p99 over many scans.

Stages (perf_counter, ms):
  decode  BarcodeReader.read on the camera's luma frame, configured as the door app uses it
          (scanner.door_reader: QR only, zxing-cpp full-frame pass every frame, no localiser)
  verify  throttle, parse, Ed25519 signature, key/revocation/used lookups, lockout check
  commit  durable SQLite commit (synchronous=FULL, WAL) of the use + the door.granted event
  relay   state machine + gpiozero output write + read-back (MockFactory pin)
  total   decode + verify + commit + relay  (frame-in to relay-on, excluding exposure)

Peer, interleaved in the same run on the same frames: zxing-cpp's full-frame
``read_barcodes`` (what a user would call directly) for the decode stage.

Each scan uses a fresh single-use credential (issued before timing); the state file lives on
the same disk as this repository (not tmpfs), so the fsync is real.

    python bench/door_latency.py [--quick] [--scans N] [--size 1280x720]

Last line printed: one JSON object (p50_ms, p99_ms, per-stage medians/p99, peer decode).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zxingcpp

from storeedge.drivers.clock import SystemClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.credential import CredentialSpec, generate_signing_key, issue
from storeedge.firmware.dock_door.hardware import DoorWiring, InputWiring, RelayWiring
from storeedge.qrimage import qr_gray
from storeedge.firmware.dock_door.runtime import DoorOptions, DoorSeams, build_door
from storeedge.firmware.dock_door.scanner import door_reader


def pct(values: list[float], q: float) -> float:
    """q-th percentile (0..100) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100.0 * len(s) + 0.5)) - 1))]


def make_door(workdir: Path):
    factory = new_mock_factory()
    opts = DoorOptions(store="s0042", door="door-1", state_path=str(workdir / "door.db"),
                       wiring=DoorWiring(RelayWiring(17), InputWiring(27)), repeat_s=0.0)
    ctl = build_door(opts, SystemClock(), DoorSeams(sink=lambda rec: None, pin_factory=factory))
    factory.pin(27).drive_low()
    return ctl, factory


def one_scan(ctl, reader, frame, text) -> dict:
    """Frame in -> relay on for one code; returns stage times in ms."""
    t0 = time.perf_counter()
    reads = [b.text for b in reader.read(frame) if b.format == "QR Code"]
    t1 = time.perf_counter()
    if reads != [text]:
        raise RuntimeError(f"decode failed: {reads!r}")
    d = ctl.present(reads[0], "camera")
    if d is None or not d.granted:
        raise RuntimeError(f"not granted: {d}")
    lt = ctl.last_timing
    out = {"decode": (t1 - t0) * 1e3, "verify": lt.verify_s * 1e3, "commit": lt.commit_s * 1e3,
           "relay": lt.relay_s * 1e3}
    out["total"] = sum(out.values())
    ctl.p.logic.contact(True)          # no passage: relock for the next scan
    ctl.p.relay.lock()
    ctl.p.logic._relock()
    ctl.p.logic.visit = None
    return out


def peer_decode(frame, text) -> float:
    t0 = time.perf_counter()
    got = [b.text for b in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode)]
    dt = (time.perf_counter() - t0) * 1e3
    if got != [text]:
        raise RuntimeError("peer decode failed")
    return dt


def run(scans: int, size: tuple[int, int]) -> dict:
    key = generate_signing_key(1)
    now = int(time.time())
    texts = [issue(key, CredentialSpec("s0042", "door-1", "ACME Foods", "D. Rivera",
                                       f"PO-{i:06d}", now - 600, now + 7200))
             for i in range(scans)]
    w, h = size
    frame = np.full((h, w), 120, np.uint8)
    rng = np.random.default_rng(7)
    frame += rng.integers(0, 30, size=frame.shape, dtype=np.uint8)   # sensor-ish noise
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        ctl, _ = make_door(Path(tmp))
        ctl.p.state.trust_key(key.kid, key.public)
        reader = door_reader()                          # as the door app configures it
        stages: dict[str, list[float]] = {k: [] for k in
                                          ("decode", "verify", "commit", "relay", "total")}
        peer: list[float] = []
        for i, text in enumerate(texts):
            f = frame.copy()
            sym = qr_gray(text, scale=3)
            x, y = 80 + (i * 37) % (w - sym.shape[1] - 160), 60 + (i * 23) % (h - sym.shape[0] - 120)
            f[y:y + sym.shape[0], x:x + sym.shape[1]] = sym
            if i % 2:                                   # interleave: alternate who goes first
                peer.append(peer_decode(f, text))
                res = one_scan(ctl, reader, f, text)
            else:
                res = one_scan(ctl, reader, f, text)
                peer.append(peer_decode(f, text))
            for k, v in res.items():
                stages[k].append(v)
        ctl.p.state.close()
    return summarise(stages, peer, scans, size)


def summarise(stages, peer, scans, size) -> dict:
    out = {"bench": "door_latency", "scans": scans, "frame": f"{size[0]}x{size[1]}",
           "p50_ms": round(statistics.median(stages["total"]), 3),
           "p99_ms": round(pct(stages["total"], 99), 3)}
    for k in ("decode", "verify", "commit", "relay"):
        out[f"{k}_p50_ms"] = round(statistics.median(stages[k]), 3)
        out[f"{k}_p99_ms"] = round(pct(stages[k], 99), 3)
    out["peer_zxing_full_frame_decode_p50_ms"] = round(statistics.median(peer), 3)
    out["decode_vs_peer_ratio"] = round(out["decode_p50_ms"] / out[
        "peer_zxing_full_frame_decode_p50_ms"], 3)
    out["target_p99_ms"] = 50.0
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 scans")
    ap.add_argument("--scans", type=int, default=500)
    ap.add_argument("--size", default="1280x720", help="camera luma frame WxH")
    args = ap.parse_args(argv)
    scans = 60 if args.quick else args.scans
    w, h = (int(v) for v in args.size.lower().split("x"))
    res = run(scans, (w, h))
    for k in ("decode", "verify", "commit", "relay"):
        print(f"{k:>7}: p50 {res[f'{k}_p50_ms']:7.3f} ms   p99 {res[f'{k}_p99_ms']:7.3f} ms")
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
