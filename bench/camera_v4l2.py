"""Benchmark: the V4L2 backend's frame conversion vs OpenCV, one thread, per camera frame.

What ``V4L2Camera.capture`` does to each frame a USB camera delivers at ``--size`` (default
1280x720): main luma + 320x180 I420 lores, from YUYV (``yuyv_to_streams``) and from MJPEG
(``mjpeg_to_streams``: Pillow decode).  The peer is what a user would write with OpenCV
(``cvtColor`` YUY2->GRAY and ->RGB, ``resize`` INTER_AREA, RGB->I420; ``imdecode`` for MJPEG),
``cv2.setNumThreads(1)``.  Interleaved round-robin over a pool of distinct frames, medians in
ms per frame; ``*_ratio_vs_opencv`` = ours / OpenCV (lower is better), ``*_budget_30fps`` =
our share of a 33.3 ms frame period on this machine.  Accuracy: mean absolute difference of
our main luma and lores from OpenCV's (gray levels).

    python bench/camera_v4l2.py [--quick] [--size 1280x720]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from storeedge.drivers.camera.base import i420_from_rgb  # noqa: E402
from storeedge.drivers.camera.v4l2 import mjpeg_to_streams, yuyv_to_streams  # noqa: E402

LORES = (320, 180)


def scene(w: int, h: int, seed: int) -> np.ndarray:
    """A lane-like RGB picture: smooth background, noise, bars (barcode-like edges)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 200 // w + 20, yy * 180 // h + 30, (xx + yy) * 150 // (w + h) + 40],
                    axis=-1).astype(np.int16)
    base += rng.integers(-12, 13, base.shape, dtype=np.int16)
    bars = rng.integers(0, 2, w // 3 + 1).repeat(3)[:w].astype(bool)
    base[h // 3:h // 2, bars] = 10
    return np.clip(base, 0, 255).astype(np.uint8)


def yuyv_of(rgb: np.ndarray) -> bytes:
    """Pack a picture as YUYV (BT.601 limited, chroma of each row pair)."""
    h, w, _ = rgb.shape
    i420 = i420_from_rgb(rgb)
    u = i420[h:h + h // 4].reshape(h // 2, w // 2).repeat(2, 0)
    v = i420[h + h // 4:].reshape(h // 2, w // 2).repeat(2, 0)
    out = np.empty((h, w * 2), np.uint8)
    out[:, 0::2], out[:, 1::4], out[:, 3::4] = i420[:h], u, v
    return out.tobytes()


def jpeg_of(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def cv_yuyv(buf: bytes, w: int, h: int):
    packed = np.frombuffer(buf, np.uint8).reshape(h, w, 2)
    main = cv2.cvtColor(packed, cv2.COLOR_YUV2GRAY_YUY2)
    rgb = cv2.resize(cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_YUY2), LORES,
                     interpolation=cv2.INTER_AREA)
    return main, cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)


def cv_mjpeg(data: bytes, w: int, h: int):
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    main = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(bgr, LORES, interpolation=cv2.INTER_AREA)
    return main, cv2.cvtColor(small, cv2.COLOR_BGR2YUV_I420)


def run(size: tuple[int, int], rounds: int, pool: int) -> dict:
    w, h = size
    pictures = [scene(w, h, seed) for seed in range(pool)]
    yuyv = [yuyv_of(p) for p in pictures]
    jpegs = [jpeg_of(p) for p in pictures]
    contenders = {
        "ours_yuyv": lambda i: yuyv_to_streams(yuyv[i], size, LORES),
        "opencv_yuyv": lambda i: cv_yuyv(yuyv[i], w, h),
        "ours_mjpeg": lambda i: mjpeg_to_streams(jpegs[i], size, LORES),
        "opencv_mjpeg": lambda i: cv_mjpeg(jpegs[i], w, h),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(rounds):
        for name, fn in contenders.items():             # interleaved, each on the next frame
            start = time.perf_counter()
            fn(r % pool)
            times[name].append((time.perf_counter() - start) * 1000.0)
    med = {name: statistics.median(t) for name, t in times.items()}
    ours_y, cv_y = yuyv_to_streams(yuyv[0], size, LORES), cv_yuyv(yuyv[0], w, h)
    ours_j, cv_j = mjpeg_to_streams(jpegs[0], size, LORES), cv_mjpeg(jpegs[0], w, h)

    def mad(a, b):
        return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())

    return {
        "bench": "camera_v4l2", "size": f"{w}x{h}", "lores": f"{LORES[0]}x{LORES[1]}",
        "rounds": rounds, **{f"{k}_ms": v for k, v in med.items()},
        "yuyv_ratio_vs_opencv": med["ours_yuyv"] / med["opencv_yuyv"],
        "mjpeg_ratio_vs_opencv": med["ours_mjpeg"] / med["opencv_mjpeg"],
        "yuyv_budget_30fps": med["ours_yuyv"] / (1000 / 30),
        "mjpeg_budget_30fps": med["ours_mjpeg"] / (1000 / 30),
        "yuyv_main_mad": mad(ours_y[0], cv_y[0]), "yuyv_lores_mad": mad(ours_y[1], cv_y[1]),
        # JFIF luma is full range, OpenCV's gray too; ours is limited range like picamera2.
        "mjpeg_lores_mad": mad(ours_j[1], cv_j[1]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run")
    ap.add_argument("--size", default="1280x720", help="camera frame WxH (even)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    cv2.setNumThreads(1)
    result = run((w, h), rounds=20 if args.quick else 200, pool=3 if args.quick else 8)
    for key, value in result.items():
        if key.endswith("_ms"):
            print(f"{key:>16}: {value:8.2f} ms/frame")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                      for k, v in result.items()}))


if __name__ == "__main__":
    main()
