"""Benchmark: storeedge.native.preprocess vs OpenCV, one thread, I420 -> 320x320 RGB uint8.

In one run, interleaved round-robin, medians: ours (compiled), ours (pure twin, fewer rounds),
OpenCV standard path (cvtColor I420->RGB, then resize INTER_LINEAR), OpenCV planes-first
(resize Y/U/V, then cvtColor), numpy memcpy of the frame hot (same frame every time) and cold
(a pool of frames much larger than L2, each touched once per cycle: what a camera delivers).
Every contender reads the next frame of the pool, so no one reads a frame another just
cached; ``ratio_vs_opencv`` is on these cold frames (``hot_ratio_vs_opencv``: one frame
reused).  Accuracy: mean/max absolute error against
the exact float reference (BT.601 limited range, MPEG-2 chroma siting, area/bilinear) of
tests/helpers/vision_reference.py, for ours and for both OpenCV paths.

    python bench/preprocess.py [--quick] [--images DIR]

``--images DIR``: use real photos (any format OpenCV reads) instead of the synthetic scenes.
The last line printed is one JSON object (ratios, not absolute times, are the figures).
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
from storeedge.native import _preprocess_py as twin  # noqa: E402
from storeedge.native import preprocess as pp  # noqa: E402

OUT = 320
POOL_BYTES = 96 << 20


def photo_frames(folder: str, w: int, h: int, count: int) -> list[np.ndarray]:
    """Real photos cropped to the aspect ratio, area-resized, as I420 (MPEG-2 sited)."""
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    frames = []
    for name in names:
        img = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
        if img is None:
            continue
        ih, iw = img.shape[:2]
        s = min(iw / w, ih / h)
        cw, ch = int(w * s), int(h * s)
        img = img[(ih - ch) // 2:(ih - ch) // 2 + ch, (iw - cw) // 2:(iw - cw) // 2 + cw]
        rgb = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(float)
        y, cb, cr = ref.rgb_to_yuv(rgb)
        planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8)
                  for p in (y, ref.subsample_420(cb), ref.subsample_420(cr))]
        frames.append(np.concatenate([p.reshape(-1) for p in planes]).reshape(h * 3 // 2, w))
        if len(frames) == count:
            break
    if not frames:
        raise SystemExit(f"no readable images in {folder}")
    return frames


def make_pool(w: int, h: int, images: str | None, distinct: int) -> list[np.ndarray]:
    """A pool of frames totalling ~POOL_BYTES, built from ``distinct`` different pictures."""
    if images:
        base = photo_frames(images, w, h, distinct)
    else:
        base = [ref.scene_i420(w, h, seed=s) for s in range(distinct)]
    n = max(len(base), POOL_BYTES // base[0].nbytes)
    return [base[i % len(base)].copy() for i in range(n)]


def opencv_standard(frame: np.ndarray, out: np.ndarray) -> None:
    rgb = cv2.cvtColor(frame, cv2.COLOR_YUV2RGB_I420)
    cv2.resize(rgb, (OUT, OUT), dst=out, interpolation=cv2.INTER_LINEAR)


def opencv_planes_first(frame: np.ndarray, out: np.ndarray, small: np.ndarray) -> None:
    y, u, v = ref.split_i420(frame)
    h = OUT
    cv2.resize(y, (OUT, OUT), dst=small[:h], interpolation=cv2.INTER_LINEAR)
    flat = small.reshape(-1)
    q = (OUT // 2) * (OUT // 2)
    cv2.resize(u, (OUT // 2, OUT // 2), dst=flat[OUT * OUT:OUT * OUT + q].reshape(OUT // 2, -1),
               interpolation=cv2.INTER_LINEAR)
    cv2.resize(v, (OUT // 2, OUT // 2), dst=flat[OUT * OUT + q:].reshape(OUT // 2, -1),
               interpolation=cv2.INTER_LINEAR)
    cv2.cvtColor(small, cv2.COLOR_YUV2RGB_I420, dst=out)


def ours_with(kernel):
    def run(frame: np.ndarray, out: np.ndarray) -> None:
        saved = pp._kernel
        pp._kernel = kernel
        try:
            pp.preprocess(frame, "I420", out)
        finally:
            pp._kernel = saved
    return run


def errors(fn, frames: list[np.ndarray]) -> tuple[float, float]:
    """Mean and max absolute error (levels) of ``fn`` against the exact reference."""
    errs = []
    for frame in frames:
        out = np.empty((OUT, OUT, 3), np.uint8)
        fn(frame, out)
        y, u, v = ref.split_i420(frame)
        exact = ref.reference_yuv(y, u, v, (0, 0, frame.shape[1], y.shape[0]), OUT, OUT)
        errs.append(np.abs(out - exact))
    e = np.stack(errs)
    return float(e.mean()), float(e.max())


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def measure(pool: list[np.ndarray], rounds: int, twin_every: int) -> dict[str, float]:
    """Interleaved medians (seconds) of every contender on the pool's frames."""
    out = np.empty((OUT, OUT, 3), np.uint8)
    small = np.empty((OUT * 3 // 2, OUT), np.uint8)
    sink = np.empty_like(pool[0])
    hot = pool[0].copy()
    runs = {
        "ours": lambda f: pp.preprocess(f, "I420", out),
        "opencv": lambda f: opencv_standard(f, out),
        "opencv_planes_first": lambda f: opencv_planes_first(f, out, small),
        "memcpy_cold": lambda f: np.copyto(sink, f),
        "memcpy_hot": lambda f: np.copyto(sink, hot),
        "ours_hot": lambda f: pp.preprocess(hot, "I420", out),
        "opencv_hot": lambda f: opencv_standard(hot, out),
    }
    times = {k: [] for k in runs}
    times["twin"] = []
    twin_run = ours_with(twin)
    k = 0
    for r in range(rounds):
        for name, fn in runs.items():          # each contender gets a frame nobody touched
            times[name].append(timed(fn, pool[k % len(pool)]))     # for a whole pool cycle
            k += 1
        if r % twin_every == 0:
            times["twin"].append(timed(twin_run, pool[k % len(pool)], out))
            k += 1
    return {k: statistics.median(v) for k, v in times.items()}


def bench_size(w: int, h: int, args) -> dict:
    pool = make_pool(w, h, args.images, 4 if args.quick else 8)
    rounds = 300 if args.quick else 3000
    for f in pool[:3]:                                      # warm-up (tables, code)
        pp.preprocess(f, "I420", np.empty((OUT, OUT, 3), np.uint8))
    med = measure(pool, rounds, 50)
    acc_frames = pool[:2 if args.quick else 6]
    ours_err = errors(ours_with(pp._kernel), acc_frames)
    cv_err = errors(opencv_standard, acc_frames)
    pf_small = np.empty((OUT * 3 // 2, OUT), np.uint8)
    pf_err = errors(lambda f, o: opencv_planes_first(f, o, pf_small), acc_frames)
    res = {
        "size": f"{w}x{h}",
        "ratio_vs_opencv": med["ours"] / med["opencv"],
        "ratio_vs_memcpy_cold": med["ours"] / med["memcpy_cold"],
        "ratio_vs_memcpy_hot": med["ours_hot"] / med["memcpy_hot"],
        "hot_ratio_vs_opencv": med["ours_hot"] / med["opencv_hot"],
        "twin_ratio_vs_opencv": med["twin"] / med["opencv"],
        "planes_first_ratio_vs_opencv": med["opencv_planes_first"] / med["opencv"],
        "memcpy_cold_ratio_vs_opencv": med["memcpy_cold"] / med["opencv"],
        "mean_abs_err": ours_err[0], "max_abs_err": ours_err[1],
        "opencv_mean_abs_err": cv_err[0], "opencv_max_abs_err": cv_err[1],
        "planes_first_mean_abs_err": pf_err[0], "planes_first_max_abs_err": pf_err[1],
        "median_us": {k: round(v * 1e6, 1) for k, v in med.items()},
    }
    print(f"{w}x{h} -> {OUT}x{OUT} RGB u8: " + ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run")
    ap.add_argument("--images", help="folder of real photos to use as frames")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    if pp.BACKEND != "cython":
        raise SystemExit("bench needs the compiled kernel (unset STOREEDGE_PURE)")
    sizes = [bench_size(1280, 720, args), bench_size(640, 480, args)]
    main_res = sizes[0]
    summary = {k: main_res[k] for k in (
        "ratio_vs_opencv", "mean_abs_err", "ratio_vs_memcpy_cold", "opencv_mean_abs_err",
        "max_abs_err", "opencv_max_abs_err", "planes_first_ratio_vs_opencv",
        "planes_first_mean_abs_err", "hot_ratio_vs_opencv", "ratio_vs_memcpy_hot",
        "twin_ratio_vs_opencv")}
    summary["vga_ratio_vs_opencv"] = sizes[1]["ratio_vs_opencv"]
    summary["vga_mean_abs_err"] = sizes[1]["mean_abs_err"]
    summary["data"] = "photos" if args.images else "synthetic"
    summary["cflags"] = "-O3 " + os.environ.get("STOREEDGE_CFLAGS", "(build-time STOREEDGE_CFLAGS)")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in summary.items()}))


if __name__ == "__main__":
    main()
