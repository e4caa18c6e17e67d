"""Run a synthetic lane offline, as fast as possible: camera frames and the scripted POS log
through the real pipeline and lane logic. Used by the tests, the benchmarks and the demo.

    run = run_lane(SyntheticLaneCamera(scripted(3, ["scanned", "skipped"])), detector)
    run.alerts        # Alert objects; run.events: (body, ts) in emit order
"""
from __future__ import annotations

from dataclasses import dataclass, field

from storeedge.drivers.camera.lane import LaneScript
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera
from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.pos import ReplayPosFeed
from storeedge.firmware.checkout.alerts import AlertPolicyParams
from storeedge.firmware.checkout.detector.base import Detector
from storeedge.firmware.checkout.logic import CheckoutLane
from storeedge.firmware.checkout.matcher import MatchWindows
from storeedge.firmware.checkout.pipeline import LanePipeline, PipelineParams


def pos_records(script: LaneScript, t0: float = 0.0) -> list[tuple[float, object]]:
    """The script's POS lines as replay records (scans as scanner bytes with AIM prefix)."""
    out = []
    for p in script.pos:
        if p.kind == "scan":
            out.append((t0 + p.t, (p.symbology + p.code).encode("ascii")))
        else:
            out.append((t0 + p.t, p.kind))
    return out


@dataclass
class LaneRun:
    """What a run produced."""

    lane: CheckoutLane
    pipeline: LanePipeline
    events: list = field(default_factory=list)

    @property
    def alerts(self):
        return self.lane.stats.alerts

    def of_type(self, name: str) -> list:
        return [b for b, _ in self.events if b.EVENT_TYPE == name]


@dataclass
class LaneTuning:
    """Pipeline, matching and policy parameters (None: defaults)."""

    params: PipelineParams | None = None
    windows: MatchWindows | None = None
    policy: AlertPolicyParams | None = None


def run_lane(cam: SyntheticLaneCamera, detector: Detector | None, *,
             tuning: LaneTuning | None = None, pos=None, clock=None,
             tail_s: float = 3.0) -> LaneRun:
    """Run ``cam`` to its end with its script's POS log (or ``pos`` records); the lane's
    tail is ``tail_s`` seconds after the script ends."""
    clock = clock or SimulatedClock()
    tune = tuning or LaneTuning()
    params = tune.params
    run = LaneRun(None, None)
    lane = CheckoutLane(lambda body, ts: run.events.append((body, ts)), clock,
                        windows=tune.windows, policy=tune.policy)
    info = cam.info
    pipe = LanePipeline(info.lores_size, info.main_size, detector, params)
    run.lane, run.pipeline = lane, pipe
    feed = ReplayPosFeed(pos if pos is not None else pos_records(cam.script, cam.t0))
    last = cam.t0
    for frame in cam.frames():
        for item in feed.poll(frame.t):
            lane.on_pos(item)
        lane.on_frame(pipe.process(frame))
        lane.tick(frame.t)
        last = frame.t
    end = max(last, cam.t0 + cam.script.duration) + tail_s
    for item in feed.poll(end):
        lane.on_pos(item)
    lane.tick(end)
    lane.tick(end + 1.0, flush=True)
    return run
