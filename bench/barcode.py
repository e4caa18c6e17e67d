"""Benchmark: our localise-then-decode reader vs zxing-cpp on whole 1280x720 frames.

Generated scan-zone frames (storeedge.native.barcode_synth: clutter, rotation, perspective,
motion blur, noise, glare, low contrast, 0-4 codes, some frames empty).  Per frame, in rotating
order (interleaved), each method reads the same frame:

* ``ours``          -- read_barcodes(frame): localiser + zxing-cpp on crops (no full frame);
* ``reader``        -- BarcodeReader(fallback_period=15).read: ours + a full-frame pass on
                       every 15th frame (cost amortised; report uses the mean);
* ``zxing_default`` -- zxingcpp.read_barcodes(frame) with its defaults (all formats);
* ``zxing_retail``  -- zxingcpp.read_barcodes(frame, formats=AllRetail).

A read is correct when its text equals a code's text and its centre lies within 0.6 code
diagonals of that code's centre; any other read on a frame with codes is wrong; any read on an
empty frame is a false positive.  Times are CPU time of this thread (``time.thread_time``:
the machine is shared), per-frame medians (and means); ratios only.

    python bench/barcode.py [--quick] [--frames N] [--seed S]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import zxingcpp

from storeedge.native.barcode import BarcodeReader, parse_formats, read_barcodes
from storeedge.native.barcode_synth import compose_scene, random_code
from storeedge.native.locate import BACKEND

METHODS = ("ours", "reader", "zxing_default", "zxing_retail")


def make_frames(n: int, seed: int):
    """n (frame, truths) pairs; about one frame in six is empty."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        count = 0 if rng.random() < 0.17 else int(rng.integers(1, 5))
        out.append(compose_scene([random_code(rng) for _ in range(count)], rng))
    return out


def _centre(r):
    if hasattr(r, "center"):
        return tuple(r.center)
    p = r.position
    return (sum(q.x for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)) / 4,
            sum(q.y for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)) / 4)


def score(reads, truths) -> tuple[int, int, int]:
    """(correct, wrong, false positives) for one frame."""
    if not truths:
        return 0, 0, len(reads)
    correct, used = 0, set()
    for r in reads:
        hit = None
        for i, t in enumerate(truths):
            diag = math.dist(t.corners[0], t.corners[2])
            if i not in used and r.text == t.text and math.dist(_centre(r), t.center) < 0.6 * diag:
                hit = i
                break
        if hit is None:
            continue
        used.add(hit)
        correct += 1
    return correct, len(reads) - correct, 0


def run(frames, fallback_period: int = 15) -> dict:
    fs = parse_formats(None)
    reader = BarcodeReader(fs.all, fallback_period=fallback_period)
    calls = {
        "ours": lambda f: read_barcodes(f, fs),
        "reader": reader.read,
        "zxing_default": zxingcpp.read_barcodes,
        "zxing_retail": lambda f: zxingcpp.read_barcodes(f, formats=zxingcpp.AllRetail),
    }
    times = {m: [] for m in METHODS}
    tally = {m: [0, 0, 0] for m in METHODS}
    for i, (frame, truths) in enumerate(frames):
        order = METHODS[i % 4:] + METHODS[:i % 4]          # rotate who goes first
        for m in order:
            t0 = time.thread_time()
            reads = calls[m](frame)
            times[m].append(time.thread_time() - t0)
            for k, v in enumerate(score(reads, truths)):
                tally[m][k] += v
    return {"times": times, "tally": tally}


def summarise(frames, res) -> dict:
    med = {m: statistics.median(res["times"][m]) for m in METHODS}
    mean = {m: statistics.fmean(res["times"][m]) for m in METHODS}
    tally = res["tally"]
    return {
        "frames": len(frames),
        "empty_frames": sum(1 for _, t in frames if not t),
        "codes": sum(len(t) for _, t in frames),
        "backend": BACKEND,
        "correct": tally["ours"][0],
        "wrong": tally["ours"][1],
        "false_positives": tally["ours"][2],
        "zxing_default_correct": tally["zxing_default"][0],
        "zxing_default_wrong": tally["zxing_default"][1],
        "zxing_default_false_positives": tally["zxing_default"][2],
        "zxing_retail_correct": tally["zxing_retail"][0],
        "reader_correct": tally["reader"][0],
        "reader_false_positives": tally["reader"][2],
        "time_ratio_vs_zxing_default": round(med["ours"] / med["zxing_default"], 4),
        "time_ratio_vs_zxing_retail": round(med["ours"] / med["zxing_retail"], 4),
        "reader_mean_time_ratio_vs_zxing_default":
            round(mean["reader"] / mean["zxing_default"], 4),
        "reader_mean_time_ratio_vs_zxing_retail":
            round(mean["reader"] / mean["zxing_retail"], 4),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 frames instead of 200")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20261124)
    args = ap.parse_args(argv)
    n = args.frames or (40 if args.quick else 200)
    frames = make_frames(n, args.seed)
    run(frames[:4])                                          # warm-up (imports, caches)
    out = summarise(frames, run(frames))
    print(f"{out['frames']} frames ({out['empty_frames']} empty), {out['codes']} codes, "
          f"backend {out['backend']}")
    print(f"correct: ours {out['correct']}, reader+fallback {out['reader_correct']}, "
          f"zxing default {out['zxing_default_correct']}, zxing retail "
          f"{out['zxing_retail_correct']}; wrong {out['wrong']}; false positives "
          f"{out['false_positives']}")
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
