"""Run a synthetic lane offline, as fast as possible: camera frames and the scripted POS log
through the real pipeline and lane logic. Used by the tests, the benchmarks and the demo.

    run = run_lane(SyntheticLaneCamera(scripted(3, ["scanned", "skipped"])), detector)
    run.alerts        # Alert objects; run.events: (body, ts) in emit order
"""
from __future__ import annotations

from dataclasses import dataclass, field

from storeedge.drivers.camera.base import Camera
from storeedge.drivers.camera.lane import LaneScript
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera
from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.pos import ReplayPosFeed
from storeedge.firmware.checkout.app import wire_lane
from storeedge.firmware.checkout.config import CheckoutSection
from storeedge.firmware.checkout.detector.base import Detector
from storeedge.firmware.checkout.logic import CheckoutLane
from storeedge.firmware.checkout.pipeline import LanePipeline
from storeedge.firmware.checkout.timing import PosTiming


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


def run_lane(cam: Camera, detector: Detector | None, *,
             tuning: CheckoutSection | None = None, pos=None, clock=None,
             tail_s: float = 3.0, timing: PosTiming | None = None) -> LaneRun:
    """Run ``cam`` (a synthetic lane, or any finite camera such as a recording's video) to
    its end with its script's POS log (or ``pos`` records, needed without a script); the
    lane's tail is ``tail_s`` seconds after the script ends (or after the last POS record,
    when later). ``tuning``: the lane's config section (None: defaults), wired as the app
    wires it (:func:`~.app.wire_lane`); ``timing``: the lane's learned POS timing (kept
    across runs; None: a new lane)."""
    clock = clock or SimulatedClock()
    run = LaneRun(None, None)
    pipe, lane = wire_lane(tuning or CheckoutSection(),
                           lambda body, ts: run.events.append((body, ts)), clock, cam.info,
                           detector, timing=timing)
    run.lane, run.pipeline = lane, pipe
    t0 = getattr(cam, "t0", 0.0)
    script = getattr(cam, "script", None)
    records = pos if pos is not None else pos_records(script, t0)
    feed = ReplayPosFeed(records)
    last = t0
    for frame in cam.frames():
        for item in feed.poll(frame.t):
            lane.on_pos(item)
        lane.on_frame(pipe.process(frame))
        lane.tick(frame.t)
        last = frame.t
    end = max(last, t0 + (script.duration if script else 0.0),
              max((t for t, _ in records), default=0.0)) + tail_s
    for item in feed.poll(end):
        lane.on_pos(item)
    lane.tick(end)
    lane.tick(end + 1.0, flush=True)
    return run


class LaneSession:
    """One lane serving several transactions in a row (each run a fresh pipeline and lane
    logic, as after a restart; the learned POS timing is kept, as its state file would)."""

    def __init__(self, detector: Detector | None, tuning: CheckoutSection | None = None,
                 timing: PosTiming | None = None):
        self.detector, self.tuning = detector, tuning
        self.timing = timing or PosTiming()

    def run(self, cam: Camera, **kw) -> LaneRun:
        """Run one transaction (``kw``: see :func:`run_lane`)."""
        return run_lane(cam, self.detector, tuning=self.tuning, timing=self.timing, **kw)
