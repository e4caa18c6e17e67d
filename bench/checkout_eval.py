"""Checkout alert quality on held-out synthetic lanes (seeds never used by the tests), per
difficulty level: precision and recall of missed-scan alerts, recall of ticket-switch alerts
where the code was visible to the camera, alert latency after the pass ended.

An alert counts as true when its pass overlaps (in time) a ground-truth pass that should have
raised that alert; each truth pass is credited once. Runs use the real LiteRT palm detector.
Besides the levels, stress conditions a real store has (each on top of the hard level, see
CONDITIONS): a POS relayed 1-2 s late, 0.05-1.2 s of per-line jitter, half light with
sensor noise sigma 8, a cheaper camera at 1.5 px per barcode module. Each lane serves an
unscored warm-up transaction first (its learned POS timing, as a lane in service has).
False alerts per 100 passes count missed-scan and switch alerts without a matching truth.

    python bench/checkout_eval.py [--quick] [--seeds N] [--only hard,pos_late] [--tune]
    python bench/checkout_eval.py --recording lane-3.lane [more.lane ...]   # real footage

Last line: one JSON object; the top-level figures are those of the hard level, "levels"
and "conditions" hold every one.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

LEVELS = ("easy", "medium", "hard")
EVAL_SEED0 = 700_000
WARMUP_ITEMS = 8
TUNE_SEED0 = 600_000          # --tune: the seeds thresholds may be tuned on (never reported)
# stress conditions a real store has, each on top of the hard level (name -> LaneLevel fields)
CONDITIONS = {
    "pos_late": dict(pos_delay=(1.0, 2.0)),                 # lines relayed 1-2 s late
    "pos_jitter": dict(pos_jitter=(0.05, 1.2)),             # 0.05-1.2 s extra per line
    "dark_noisy": dict(brightness=0.5, noise=8.0),          # half brightness, sensor sigma 8
    "low_res": dict(module_px=1.5),                         # cheaper camera: 1.5 px/module
}


def _overlap(a0, a1, b0, b1) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def score_run(run, truth) -> dict:
    """Counts for one lane: missed-scan TP/FP/FN, switch hits, latencies (s)."""
    alerts = run.lane.stats.alerts
    credited: set[tuple[str, int]] = set()
    c = dict(ms_tp=0, ms_fp=0, ms_pos=0, sw_vis=0, sw_hit=0, sw_any=0, sw_fp=0, lat=[],
             passes=len(truth), passes_seen=0, no_pass_notes=0, extra_passes=0)
    seen = [o.item_pass for o in run.lane.stats.outcomes]
    for t in truth:
        c["passes_seen"] += any(_overlap(p.t_start, p.t_end, t.t_start, t.t_end) > 0
                                for p in seen)
    c["extra_passes"] = len({p.id for p in seen if not any(
        _overlap(p.t_start, p.t_end, t.t_start, t.t_end) > 0 for t in truth)})
    c["no_pass_notes"] = sum(n.kind == "no_pass" for n in run.lane.stats.notes)
    for a in alerts:
        p = a.outcome.item_pass
        want = "switch" if a.reason == "ticket_switch" else "missed"
        best = max(range(len(truth)), default=None,
                   key=lambda i: _overlap(p.t_start, p.t_end, truth[i].t_start, truth[i].t_end))
        ok = best is not None and _overlap(p.t_start, p.t_end, truth[best].t_start,
                                           truth[best].t_end) > 0
        hit = ok and truth[best].expect == want and (want, best) not in credited
        if hit:
            credited.add((want, best))
            c["lat"].append(a.outcome.t - truth[best].t_end)
        if want == "missed":
            c["ms_tp" if hit else "ms_fp"] += 1
        else:
            c["sw_fp"] += 0 if hit else 1
        if ok and truth[best].kind == "ticket_switch":
            credited.add(("any", best))
    for i, t in enumerate(truth):
        if t.expect == "missed":
            c["ms_pos"] += 1
        if t.expect == "switch":
            c["sw_any"] += ("any", i) in credited
            if t.code_visible:
                c["sw_vis"] += 1
                c["sw_hit"] += ("switch", i) in credited
    return c


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def summarise(counts: list[dict]) -> dict:
    tot = {k: sum(c[k] for c in counts) for k in counts[0] if k != "lat"}
    lat = [x for c in counts for x in c["lat"]]
    return {
        "missed_scan_precision": _ratio(tot["ms_tp"], tot["ms_tp"] + tot["ms_fp"]),
        "missed_scan_recall": _ratio(tot["ms_tp"], tot["ms_pos"]),
        "ticket_switch_recall": _ratio(tot["sw_hit"], tot["sw_vis"]),
        "ticket_switch_any_alert_recall": _ratio(tot["sw_any"], sum(c["sw_vis"] for c in counts)),
        "alert_latency_p95_s": round(float(np.percentile(lat, 95)), 3) if lat else None,
        "alert_latency_max_s": round(max(lat), 3) if lat else None,
        "missed_scan_truth": tot["ms_pos"], "missed_scan_alerts": tot["ms_tp"] + tot["ms_fp"],
        "ticket_switch_visible": tot["sw_vis"], "false_switch_alerts": tot["sw_fp"],
        "false_alerts_per_100_passes": round(100.0 * (tot["ms_fp"] + tot["sw_fp"])
                                             / max(tot["passes"], 1), 2),
        "pass_recall": _ratio(tot["passes_seen"], tot["passes"]),
        "passes_without_truth": tot["extra_passes"], "scans_without_pass": tot["no_pass_notes"],
    }


def _level(name: str):
    """The LaneLevel of a level name or a stress condition (on top of the hard level)."""
    import dataclasses

    from storeedge.drivers.camera.lane import LEVELS as LANE_LEVELS

    if name in LANE_LEVELS:
        return LANE_LEVELS[name]
    return dataclasses.replace(LANE_LEVELS["hard"], name=name, **CONDITIONS[name])


def run_case(det, name: str, seeds: list[int], n_items: int) -> dict:
    """Score lanes of level/condition ``name``, one per seed. Each lane first serves a
    warm-up transaction (WARMUP_ITEMS items, another seed, not scored) with the same POS, as
    a lane in service has (its learned POS timing); then the scored transaction."""
    from storeedge.drivers.camera.lane import make_script
    from storeedge.drivers.camera.synthetic import SyntheticLaneCamera
    from storeedge.firmware.checkout.sim import LaneSession

    level, counts, delays = _level(name), [], []
    for seed in seeds:
        session = LaneSession(det)
        session.run(SyntheticLaneCamera(make_script(seed + 500, level, WARMUP_ITEMS),
                                        fps=15.0))
        cam = SyntheticLaneCamera(make_script(seed, level, n_items), fps=15.0)
        run = session.run(cam)
        counts.append(score_run(run, cam.script.truth))
        delays.append(run.lane.timing.status().delay_s)
    out = summarise(counts)
    known = [d for d in delays if d is not None]
    out["learned_pos_delay_s_median"] = round(float(np.median(known)), 3) if known else None
    return out


def score_recordings(det, paths: list[str]) -> dict:
    """Score labelled lane recordings (video + POS log + truth), e.g. a store's own footage."""
    from storeedge.drivers.camera.recording import open_recording
    from storeedge.firmware.checkout.sim import run_lane

    counts = []
    for path in paths:
        rec = open_recording(path)
        run = run_lane(rec.camera(), det, pos=rec.pos_records())
        counts.append(score_run(run, rec.truth))
        print(path, json.dumps(summarise(counts[-1:])), flush=True)
    return summarise(counts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tune", action="store_true",
                    help="use the tuning seed range (600000+) instead of the held-out one")
    ap.add_argument("--seeds", type=int, default=0, help="lanes per level/condition")
    ap.add_argument("--only", default="", help="comma-separated levels/conditions to run")
    ap.add_argument("--recording", nargs="+", default=[],
                    help="score these labelled recordings instead of the synthetic lanes")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    from storeedge.firmware.checkout.detector.litert import LiteRTPalmDetector
    from storeedge.firmware.checkout.models.fetch import fetch

    det = LiteRTPalmDetector(fetch(), threads=1, edgetpu="off")
    if args.recording:
        out = score_recordings(det, args.recording)
        out.update(recordings=len(args.recording), detector="litert palm_detection_lite")
        print(json.dumps(out))
        return
    n_seeds, n_items = (3, 8) if args.quick else (10, 12)
    n_seeds = args.seeds or n_seeds
    seed0 = TUNE_SEED0 if args.tune else EVAL_SEED0
    names = [n for n in (*LEVELS, *CONDITIONS) if not args.only or n in args.only.split(",")]
    results, start = {}, time.perf_counter()
    for ci, name in enumerate((*LEVELS, *CONDITIONS)):
        if name not in names:
            continue
        # held out: tests use seeds < 100; thresholds were tuned on 90000-92999, 500000-502009
        # and 600000-609999 (--tune); levels/conditions here draw from 700000 + 1000 * index
        seeds = [seed0 + 1000 * ci + k for k in range(n_seeds)]
        results[name] = run_case(det, name, seeds, n_items)
        print(name, json.dumps(results[name]), flush=True)
    head = results.get("hard") or next(iter(results.values()))
    out = {k: head[k] for k in ("missed_scan_precision", "missed_scan_recall",
                                "ticket_switch_recall", "alert_latency_p95_s",
                                "false_alerts_per_100_passes")}
    out.update(level="hard" if "hard" in results else names[0],
               levels={k: v for k, v in results.items() if k in LEVELS},
               conditions={k: v for k, v in results.items() if k in CONDITIONS},
               seeds_per_level=n_seeds, items_per_lane=n_items, warmup_items=WARMUP_ITEMS,
               seed_range="tune" if args.tune else "held-out",
               detector="litert palm_detection_lite", wall_s=round(time.perf_counter() - start, 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
