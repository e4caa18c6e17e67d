"""Benchmark: storeedge.native.motion.MotionDetector vs an OpenCV motion pipeline.

Peer (what a user would write, as in Frigate's detector): resize the Y plane INTER_AREA by the
same factor, absdiff against an accumulateWeighted background, threshold, findContours,
boundingRect.  Same frames, same downscale/threshold/alpha, one thread, interleaved per frame,
medians.  Frames: a 1280x720 textured scene with sensor noise, a parcel sliding across, and a
lighting flip (the whole frame darkens) halfway.  Agreement: per-frame motion yes/no, the IoU
of moving cells (OpenCV's mask counted per cell with the same fraction rule), hits on the true
parcel position (before the flip: agreement and IoU), motion falsely reported on the
lighting flip, and the moving cells reported after it (the parcel alone covers ~20 per frame).

    python bench/motion.py [--quick]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")     # one thread everywhere, no BLAS spinners

import cv2  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "native_vision"))

import vision_reference as ref  # noqa: E402
from storeedge.native.motion import MotionDetector  # noqa: E402

W, H = 1280, 720
F, CELL, THR, ALPHA, FRAC = 4, 8, 20, 0.05, 0.1


class OpenCVMotion:
    """absdiff / threshold / contours on an area-downscaled Y plane."""

    def __init__(self) -> None:
        self.avg = None

    def update(self, y: np.ndarray):
        small = cv2.resize(y, (W // F, H // F), interpolation=cv2.INTER_AREA)
        if self.avg is None:
            self.avg = small.astype(np.float32)
            return np.zeros_like(small), []
        diff = cv2.absdiff(small, cv2.convertScaleAbs(self.avg))
        _, mask = cv2.threshold(diff, THR, 255, cv2.THRESH_BINARY)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = [cv2.boundingRect(c) for c in contours]
        cv2.accumulateWeighted(small, self.avg, ALPHA)
        return mask, boxes


def cells_of(mask: np.ndarray) -> np.ndarray:
    """Per-cell moving flags of a background-resolution mask (same fraction rule as ours)."""
    sh, sw = mask.shape
    rows, cols = -(-sh // CELL), -(-sw // CELL)
    pad = np.zeros((rows * CELL, cols * CELL), np.float64)
    pad[:sh, :sw] = mask > 0
    counts = pad.reshape(rows, CELL, cols, CELL).sum(axis=(1, 3))
    hs = np.minimum(CELL, sh - np.arange(0, sh, CELL))
    ws = np.minimum(CELL, sw - np.arange(0, sw, CELL))
    return counts / (hs[:, None] * ws[None, :]) >= FRAC


def sequence(n: int) -> tuple[list[np.ndarray], list[tuple[int, int, int, int] | None]]:
    """Y planes and the true parcel box (x, y, w, h) per frame (None: no parcel)."""
    rng = np.random.default_rng(11)
    base = ref.split_i420(ref.scene_i420(W, H, seed=21))[0].astype(np.float32)
    frames, truth = [], []
    for k in range(n):
        img = base.copy()
        box = None
        if n // 8 <= k:
            x = 40 + (k * 23) % (W - 300)
            box = (x, 300, 200, 140)
            img[300:440, x:x + 200] = 200 + 20 * np.sin(np.arange(200) / 9.0)
        if k >= n // 2:
            img *= 0.55                                    # lights dimmed at half time
        img += rng.normal(0, 2.5, img.shape).astype(np.float32)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        truth.append(box)
    return frames, truth


def overlaps(boxes, truth) -> bool:
    x, y, w, h = truth
    return any(bx < x + w and x < bx + bw and by < y + h and y < by + bh
               for bx, by, bw, bh in boxes)


def run(frames, truth, rounds: int) -> dict:
    t_ours, t_cv = [], []
    stats = dict(agree=0, frames=0, inter=0, union=0, hit_ours=0, hit_cv=0, truth=0,
                 flip_ours=0, flip_cv=0, after_ours=0, after_cv=0)
    flip = len(frames) // 2
    for r in range(rounds):
        ours, peer = MotionDetector(W, H, downscale=F, cell=CELL, threshold=THR,
                                    alpha=ALPHA, cell_fraction=FRAC), OpenCVMotion()
        for k, y in enumerate(frames):
            t = time.perf_counter()
            res = ours.update(y)
            t_ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            mask, boxes = peer.update(y)
            t_cv.append(time.perf_counter() - t)
            if r or k == 0:
                continue
            cv_cells = cells_of(mask)
            cv_motion = bool(cv_cells.any())
            if k < flip:                       # agreement before the lighting flip
                stats["frames"] += 1
                stats["agree"] += res.motion == cv_motion
                stats["inter"] += int((res.cells & cv_cells).sum())
                stats["union"] += int((res.cells | cv_cells).sum())
            else:
                stats["after_ours"] += int(res.cells.sum()) if k > flip else 0
                stats["after_cv"] += int(cv_cells.sum()) if k > flip else 0
            if k == flip:
                stats["flip_ours"] += res.motion
                stats["flip_cv"] += cv_motion
            elif truth[k] is not None:
                stats["truth"] += 1
                stats["hit_ours"] += overlaps(res.boxes, truth[k])
                px = F
                stats["hit_cv"] += overlaps([(x * px, y_ * px, w * px, h * px)
                                             for x, y_, w, h in boxes], truth[k])
    return dict(ours=statistics.median(t_ours), cv=statistics.median(t_cv), **stats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    frames, truth = sequence(24 if args.quick else 64)
    s = run(frames, truth, 2 if args.quick else 6)
    res = {
        "ratio_vs_opencv": s["ours"] / s["cv"],
        "motion_agreement": s["agree"] / s["frames"],
        "cell_iou": s["inter"] / max(1, s["union"]),
        "parcel_hit_rate": s["hit_ours"] / max(1, s["truth"]),
        "opencv_parcel_hit_rate": s["hit_cv"] / max(1, s["truth"]),
        "false_motion_on_lighting_flip": int(s["flip_ours"]),
        "moving_cells_after_flip": int(s["after_ours"]),
        "opencv_moving_cells_after_flip": int(s["after_cv"]),
        "opencv_false_motion_on_lighting_flip": int(s["flip_cv"]),
        "median_us": {"ours": round(s["ours"] * 1e6, 1), "opencv": round(s["cv"] * 1e6, 1)},
        "frames": f"{len(frames)} x {W}x{H}",
    }
    print("motion: " + ", ".join(f"{k}={v}" for k, v in res.items()))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}))


if __name__ == "__main__":
    main()
