"""Benchmark: the libcamera backend's per-frame conversion vs what a user would write, one thread.

What ``LibcameraCamera.capture`` does to each completed request, from mmapped YUV420 planes
(Y stride ``--size`` width rounded up to 64 bytes, as the Pi ISP aligns rows):

* ``two_stream``: main luma (``plane_rows``) + lores I420 from the ISP's second output
  (``yuv420_to_i420``).  Peer: picamera2's way (``make_array``: reshape the buffer to
  (rows, stride), slice the width, copy), written with numpy.
* ``one_stream``: main luma + lores I420 box-scaled from the main planes (``i420_scaled``,
  Pillow BOX), for pipelines with one output.  Peer: the same planes with OpenCV
  (``resize`` INTER_AREA per plane, ``cv2.setNumThreads(1)``).

Interleaved round-robin over a pool of distinct frames, medians in ms per frame;
``*_ratio`` = ours / peer (lower is better); ``*_budget_30fps`` = our share of a 33.3 ms frame
period on this machine.  Accuracy: max absolute difference from the peer (gray levels).

    python bench/camera_libcamera.py [--quick] [--size 1920x1080]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from storeedge.drivers.camera import libcam  # noqa: E402
from storeedge.drivers.camera.v4l2 import pack_i420  # noqa: E402

LORES = (320, 180)


def planes_of(w: int, h: int, stride: int, seed: int) -> list[memoryview]:
    """Y, U, V planes of a random-textured frame, rows padded to ``stride`` bytes, in one
    buffer at offsets (as a dmabuf holds them)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    luma = ((xx * 180 // w + yy * 40 // h) + rng.integers(0, 30, (h, w))).astype(np.uint8)
    chroma = [rng.integers(100, 156, (h // 2, w // 2), dtype=np.uint8) for _ in range(2)]
    buf, views = bytearray(), []
    for plane, pstride in ((luma, stride), (chroma[0], stride // 2), (chroma[1], stride // 2)):
        padded = np.zeros((plane.shape[0], pstride), np.uint8)
        padded[:, :plane.shape[1]] = plane
        views.append((len(buf), padded.size))
        buf += padded.tobytes()
    mem = memoryview(bytes(buf))
    return [mem[o:o + n] for o, n in views]


def rows_numpy(buf, w: int, h: int, stride: int) -> np.ndarray:
    """picamera2's make_array way: reshape to (h, stride), slice the width, copy."""
    return np.frombuffer(buf, np.uint8, count=stride * h).reshape(h, stride)[:, :w].copy()


def peer_two(main, lores, size, lsize, strides):
    (w, h), (lw, lh), (s, ls) = size, lsize, strides
    y, u, v = lores
    return rows_numpy(main[0], w, h, s), pack_i420(
        rows_numpy(y, lw, lh, ls), rows_numpy(u, lw // 2, lh // 2, ls // 2),
        rows_numpy(v, lw // 2, lh // 2, ls // 2))


def peer_one(main, size, stride):
    (w, h), (lw, lh) = size, LORES
    y, u, v = (rows_numpy(p, pw, ph, ps) for p, pw, ph, ps in (
        (main[0], w, h, stride), (main[1], w // 2, h // 2, stride // 2),
        (main[2], w // 2, h // 2, stride // 2)))
    area = cv2.INTER_AREA
    return y, pack_i420(cv2.resize(y, (lw, lh), interpolation=area),
                        cv2.resize(u, (lw // 2, lh // 2), interpolation=area),
                        cv2.resize(v, (lw // 2, lh // 2), interpolation=area))


def ours_two(main, lores, size, lsize, strides):
    (w, h), s, ls = size, strides[0], strides[1]
    return libcam.plane_rows(main[0], w, h, s), libcam.yuv420_to_i420(lores, lsize, ls)


def ours_one(main, size, stride):
    w, h = size
    luma = libcam.plane_rows(main[0], w, h, stride)
    return luma, libcam.i420_scaled(main, size, stride, LORES, luma)


def timed(fn, *args) -> tuple[float, tuple]:
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1000.0, out


def run(size: tuple[int, int], rounds: int, pool: int) -> dict:
    w, h = size
    stride, lstride = -(-w // 64) * 64, -(-LORES[0] // 64) * 64
    frames = [(planes_of(w, h, stride, i), planes_of(*LORES, lstride, 100 + i))
              for i in range(pool)]
    names = ("ours_two", "peer_two", "ours_one", "peer_one")
    times: dict[str, list[float]] = {n: [] for n in names}
    diff = {"two": 0, "one": 0}
    for r in range(rounds):
        main, lores = frames[r % pool]
        got = {}
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            if name.endswith("two"):
                args = (main, lores, size, LORES, (stride, lstride))
            else:
                args = (main, size, stride)
            fn = {"ours_two": ours_two, "peer_two": peer_two,
                  "ours_one": ours_one, "peer_one": peer_one}[name]
            ms, got[name] = timed(fn, *args)
            times[name].append(ms)
        for kind in ("two", "one"):
            for a, b in zip(got[f"ours_{kind}"], got[f"peer_{kind}"]):
                diff[kind] = max(diff[kind], int(np.abs(a.astype(int) - b.astype(int)).max()))
    med = {n: statistics.median(v) for n, v in times.items()}
    return {"bench": "camera_libcamera", "size": f"{w}x{h}", "stride": stride,
            "lores": f"{LORES[0]}x{LORES[1]}", "rounds": rounds,
            **{f"{n}_ms": round(v, 3) for n, v in med.items()},
            "two_stream_ratio": round(med["ours_two"] / med["peer_two"], 3),
            "one_stream_ratio_vs_opencv": round(med["ours_one"] / med["peer_one"], 3),
            "two_stream_budget_30fps": round(med["ours_two"] / 33.33, 3),
            "one_stream_budget_30fps": round(med["ours_one"] / 33.33, 3),
            "two_stream_max_abs_diff": diff["two"], "one_stream_max_abs_diff": diff["one"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (30 rounds)")
    parser.add_argument("--size", default="1920x1080", help="main stream WxH (even)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    w, h = (int(v) for v in args.size.lower().split("x"))
    result = run((w, h), 30 if args.quick else 300, 4 if args.quick else 8)
    for key in ("ours_two_ms", "peer_two_ms", "ours_one_ms", "peer_one_ms"):
        print(f"{key:>14}: {result[key]:8.3f} ms/frame")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
