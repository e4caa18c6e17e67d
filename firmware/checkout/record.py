"""Record a lane to a labelled recording (video + POS log + truth) that
``bench/checkout_eval.py --recording DIR`` scores.

    python -m storeedge.firmware.checkout.record --config lane.yaml --out lane-3.lane \\
        --seconds 600

The camera and POS feed are the lane's own (from the config). Frame and POS times share the
monotonic clock; the recording's timeline starts at the first frame. A synthetic camera
writes its script's truth; real footage gets an empty ``truth.jsonl`` for a person to label
(see :mod:`storeedge.drivers.camera.recording` for the format).
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from typing import NamedTuple

from storeedge.drivers.camera.recording import PosRecord, write_recording

log = logging.getLogger("storeedge.checkout")


class RecordResult(NamedTuple):
    """What was written: frames, POS lines, truth passes, seconds of footage."""

    frames: int
    pos_lines: int
    truth: int
    seconds: float


def _pos_record(item, origin: float) -> PosRecord | None:
    from storeedge.drivers.pos import PosEvent

    if not isinstance(item, PosEvent):
        return None                              # rejected lines are not part of the log
    line = item.raw if item.kind == "scan" else ""
    return PosRecord(round(item.t - origin, 4), item.kind, line, item.txn)


def record_lane(camera, pos, out: str, *, seconds: float, lossless: bool = False,
                lane: dict | None = None) -> RecordResult:
    """Capture ``seconds`` of ``camera`` (and ``pos``, a POS feed or None) into ``out``."""
    state = {"origin": None, "pos": []}

    def frames():
        for frame in camera.frames():
            if state["origin"] is None:
                state["origin"] = frame.t
            origin = state["origin"]
            for item in (pos.poll(frame.t) if pos is not None else []):
                rec = _pos_record(item, origin)
                if rec is not None:
                    state["pos"].append(rec)
            yield frame._replace(t=frame.t - origin)
            if frame.t - origin >= seconds:
                return

    truth_box: list = []
    n = write_recording(out, _tee(frames(), truth_box), state["pos"], fps=camera.info.fps,
                        lossless=lossless, lane=lane,
                        downscale=max(1, round(camera.info.main_size[0]
                                               / camera.info.lores_size[0])))
    truth = _script_truth(camera, state["origin"] or 0.0)
    if truth:
        write_recording_truth(out, truth)
    seconds_done = truth_box[-1].t if truth_box else 0.0
    return RecordResult(n, len(state["pos"]), len(truth), round(seconds_done, 3))


def _tee(frames, box: list):
    for f in frames:
        box[:] = [f]
        yield f


def _script_truth(camera, origin: float) -> list:
    script = getattr(camera, "script", None)
    if script is None:
        return []
    shift = getattr(camera, "t0", 0.0) - origin
    return [dataclasses.replace(t, t_start=t.t_start + shift, t_scan_in=t.t_scan_in + shift,
                                t_scan_out=t.t_scan_out + shift, t_end=t.t_end + shift)
            for t in script.truth]


def write_recording_truth(out: str, truth: list) -> None:
    """(Re)write ``truth.jsonl`` of the recording at ``out``."""
    import json
    import os

    with open(os.path.join(out, "truth.jsonl"), "w", encoding="utf-8") as f:
        for t in truth:
            f.write(json.dumps(dataclasses.asdict(t)) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m storeedge.firmware.checkout.record``; returns the exit code."""
    from storeedge.drivers.clock import SystemClock
    from storeedge.drivers.exc import DriverError
    from storeedge.firmware.checkout.app import make_camera, make_pos
    from storeedge.firmware.checkout.config import CheckoutConfig
    from storeedge.cmdline import AppExit, app_parser, load_app_config

    ap = app_parser("checkout-record", "record a lane to a labelled recording")
    ap.add_argument("--out", required=True, help="recording directory to write")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--lossless", action="store_true", help="x264 qp=0 (large files)")
    args = ap.parse_args(argv)
    try:
        cfg = load_app_config(args, CheckoutConfig)
    except AppExit as done:
        return done.exit_code
    c, clock = cfg.checkout, SystemClock()
    camera = pos = scanner = None
    try:
        camera = make_camera(c, clock)
        pos, scanner = make_pos(c, clock, camera)
        lane = {"pick_end": c.lane.pick_end, "bag_start": c.lane.bag_start,
                "direction": c.lane.direction, "device": cfg.device.id}
        res = record_lane(camera, pos, args.out, seconds=args.seconds, lossless=args.lossless,
                          lane=lane)
    except (DriverError, OSError) as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 1
    finally:
        for part in (scanner, pos, camera):
            if part is not None:
                part.stop() if part is scanner else part.close()
    print(f"recorded {res.frames} frames, {res.pos_lines} POS lines, {res.truth} truth passes "
          f"({res.seconds:.1f} s) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
