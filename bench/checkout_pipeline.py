"""Checkout pipeline throughput on one core: ours (with and without the LiteRT model) side by
side with a naive pipeline (OpenCV I420->RGB conversion + zxing-cpp with defaults on every full
frame + the model on every frame). Frames are pre-rendered synthetic lanes (hard level), so
rendering is not timed. Rounds are interleaved; medians are reported.

    python bench/checkout_pipeline.py [--quick]

Last line: one JSON object (fps_no_model, fps_model, fps_naive, ratio_vs_naive, ...).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _pin_one_core() -> None:
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass


def render(seeds, n_items, fps):
    from storeedge.drivers.camera.lane import make_script
    from storeedge.drivers.camera.synthetic import SyntheticLaneCamera

    frames = []
    for seed in seeds:
        cam = SyntheticLaneCamera(make_script(seed, "hard", n_items), fps=fps,
                                  t0=len(frames) / fps + 100.0)
        frames.extend(cam.frames())
    return frames


def ours(frames, detector):
    from storeedge.firmware.checkout.pipeline import LanePipeline

    h, w = frames[0].lores.shape
    pipe = LanePipeline((w, h * 2 // 3), (frames[0].main.shape[1], frames[0].main.shape[0]),
                        detector)
    start = time.perf_counter()
    passes = 0
    for f in frames:
        passes += len(pipe.process(f).passes)
    return len(frames) / (time.perf_counter() - start), passes, pipe


def naive(frames, interp, with_model=True):
    import cv2
    import zxingcpp

    inp = interp.get_input_details()[0]["index"] if interp else None
    start = time.perf_counter()
    codes = 0
    for f in frames:
        rgb = cv2.cvtColor(f.lores, cv2.COLOR_YUV2RGB_I420)
        codes += len(zxingcpp.read_barcodes(f.main))
        if with_model:
            x = cv2.resize(rgb, (192, 192)).astype(np.float32)[None] / 255.0
            interp.set_tensor(inp, x)
            interp.invoke()
    return len(frames) / (time.perf_counter() - start), codes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    _pin_one_core()
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    from storeedge.firmware.checkout.detector.litert import LiteRTPalmDetector
    from storeedge.firmware.checkout.models.fetch import fetch
    from storeedge.native.scan_match import BACKEND

    cv2.setNumThreads(1)
    model = fetch()
    fps = 15.0
    frames = render([501] if args.quick else [501, 502, 503], 6 if args.quick else 10, fps)
    naive_frames = frames[::5]
    rounds = 3 if args.quick else 5
    det = LiteRTPalmDetector(model, threads=1, edgetpu="off")
    interp = Interpreter(model_path=model, num_threads=1)
    interp.allocate_tensors()
    res = {k: [] for k in ("no_model", "model", "naive", "naive_no_model")}
    for r in range(rounds):
        res["no_model"].append(ours(frames, None)[0])
        f_model, passes, pipe = ours(frames, det)
        res["model"].append(f_model)
        res["naive"].append(naive(naive_frames, interp)[0])
        res["naive_no_model"].append(naive(naive_frames, None, with_model=False)[0])
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f} fps" for k, v in res.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in res.items()}
    out = {
        "fps_no_model": round(med["no_model"], 1),
        "fps_model": round(med["model"], 1),
        "fps_naive": round(med["naive"], 1),
        "fps_naive_no_model": round(med["naive_no_model"], 1),
        "ratio_vs_naive": round(med["model"] / med["naive"], 2),
        "ratio_no_model_vs_naive": round(med["no_model"] / med["naive"], 2),
        "ratio_no_model_vs_naive_no_model": round(med["no_model"] / med["naive_no_model"], 2),
        "frames": len(frames), "frame_rate_fps": fps, "main": list(frames[0].main.shape[::-1]),
        "lores": [frames[0].lores.shape[1], frames[0].lores.shape[0] * 2 // 3],
        "detector_runs_per_frame": round(pipe.detector_runs / len(frames), 3),
        "barcode_runs_per_frame": round(pipe.barcode_runs / len(frames), 3),
        "passes": passes, "rounds": rounds, "backend": BACKEND, "cores": 1,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
