"""Wiring of the lane app: camera thread -> bounded frame queue -> pipeline -> lane logic ->
device service; POS feed polled in the same loop. Backends are built from config here and
nowhere else (app logic receives objects).
"""
from __future__ import annotations

import logging
import os
import threading
from typing import NamedTuple

from storeedge.drivers.camera import Camera, CameraInfo, open_camera
from storeedge.drivers.pos import MqttPosFeed, PosFeed, SerialPosFeed
from storeedge.firmware.checkout.config import CheckoutConfig, CheckoutSection
from storeedge.firmware.checkout.detector import Detector, make_detector
from storeedge.firmware.checkout.logic import CheckoutLane, LaneOptions
from storeedge.firmware.checkout.pipeline import FrameQueue, LanePipeline, PipelineParams
from storeedge.firmware.checkout.timing import PosTiming
from storeedge.firmware.common.liveconfig import LiveConfig, apply_log_level
from storeedge.firmware.common.runner import EventSink

log = logging.getLogger("storeedge.checkout")


VIDEO_EXT = (".mp4", ".mkv", ".mov", ".avi", ".h264")


def make_camera(c: CheckoutSection, clock) -> Camera:
    """The camera named by ``c.camera.type`` (synthetic and replay run in real time)."""
    cam = c.camera
    if cam.type in ("picamera2", "libcamera"):
        return open_camera(cam.type, main_size=(cam.main_width, cam.main_height),
                           lores_size=(cam.lores_width, cam.lores_height), fps=cam.fps)
    if cam.type == "v4l2":
        return open_camera("v4l2", device=cam.device, main_size=(cam.main_width, cam.main_height),
                           lores_size=(cam.lores_width, cam.lores_height), fps=cam.fps,
                           pixel_format=cam.pixel_format)
    if cam.type == "replay" and cam.source.lower().endswith(VIDEO_EXT):
        return open_camera("video", source=cam.source, realtime=True, clock=clock, loop=True,
                           downscale=max(1, round(cam.main_width / cam.lores_width)))
    if cam.type == "replay":
        return open_camera("replay", source=cam.source, fps=cam.fps, realtime=True,
                           clock=clock, loop=True)
    return open_camera("synthetic", seed=cam.seed, level=cam.level, fps=cam.fps,
                       realtime=True, clock=clock, t0=clock.monotonic())


def timing_path(cfg: CheckoutConfig) -> str | None:
    """Where the lane keeps its learned POS timing: ``match.timing_file`` next to the outbox
    (the device's data directory), or None when it is not kept."""
    name = cfg.checkout.match.timing_file
    if not name:
        return None
    return name if os.path.isabs(name) else os.path.join(
        os.path.dirname(os.path.abspath(cfg.outbox.path)), name)


class ScannerSimulator:
    """Writes the synthetic lane's scanner lines (code + CR, AIM prefix) into a serial port at
    their scripted times, as a real scanner on a serial tap would."""

    def __init__(self, port, script, t0: float, clock):
        self.port, self.clock = port, clock
        self.lines = [(t0 + p.t, (p.symbology + p.code).encode("ascii") + b"\r")
                      for p in script.pos if p.kind == "scan"]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scanner-sim", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for t, line in self.lines:
            while not self._stop.is_set() and self.clock.monotonic() < t:
                self._stop.wait(0.01)
            if self._stop.is_set():
                return
            self.port.write(line)

    def stop(self) -> None:
        self._stop.set()


def make_pos(c: CheckoutSection, clock, camera: Camera) -> tuple[PosFeed | None, object]:
    """The POS feed and, for the synthetic lane, its scanner simulator."""
    pos = c.pos
    if pos.type == "serial":
        return SerialPosFeed(pos.url, clock=clock, baudrate=pos.baudrate), None
    if pos.type == "mqtt":
        return MqttPosFeed(pos.url, pos.topic, clock=clock), None
    if pos.type == "synthetic":
        from storeedge.drivers.serial import open_port

        port = open_port("loop://", timeout=0.05)
        sim = ScannerSimulator(port, camera.script, camera.t0, clock)
        return SerialPosFeed("loop://", clock=clock, port=port), sim
    return None, None


class LaneParts(NamedTuple):
    """The frame pipeline and the lane logic of one lane."""

    pipeline: LanePipeline
    lane: CheckoutLane


def wire_lane(c: CheckoutSection, emit, clock, info: CameraInfo, detector: Detector | None,
              options: LaneOptions | None = None, timing: PosTiming | None = None) -> LaneParts:
    """Pipeline and lane logic from the lane's config section (the one place they are wired:
    the running app and the offline :func:`~.sim.run_lane` both call it).

    The sections are the parameter objects: ``c.lane`` is the pipeline's geometry and
    cadence, ``c.match`` the matcher's windows, ``c.alerts`` the alert policy.
    ``emit(body, ts)`` receives the lane's events.
    """
    pipeline = LanePipeline(info.lores_size, info.main_size, detector,
                            PipelineParams(lane=c.lane, detect_every=c.detector.detect_every))
    lane = CheckoutLane(emit, clock, windows=c.match, policy=c.alerts, options=options,
                        timing=timing)
    return LaneParts(pipeline, lane)


class CheckoutApp:
    """The running lane: ``run(stop)`` until ``stop`` (a threading.Event) is set.

    Args:
        cfg: the lane's config.
        sink: where events go (the device service; see :class:`EventSink`).
        clock: time source (monotonic s for the lane logic, wall time for events).
        camera, pos, detector: replacements for what the config would open (demo, tests).
    """

    def __init__(self, cfg: CheckoutConfig, sink: EventSink, clock, *,
                 camera: Camera | None = None, pos: PosFeed | None = None,
                 detector: Detector | None = None):
        c = cfg.checkout
        self.cfg, self.sink, self.clock = cfg, sink, clock
        self.camera = camera or make_camera(c, clock)
        self._scanner = None
        if pos is None:
            pos, self._scanner = make_pos(c, clock, self.camera)
        self.pos = pos
        self.detector = detector if detector is not None else make_detector(c.detector)
        self.queue = FrameQueue(c.camera.queue_frames)
        options = LaneOptions(c.pos.idle_end_s, lane_id=cfg.device.id,
                              stall_passes=c.pos.stall_passes, stall_after_s=c.pos.stall_after_s,
                              timing_path=timing_path(cfg),
                              frames_dropped=lambda queue=self.queue: queue.dropped)
        self.pipeline, self.lane = wire_lane(c, sink.emit, clock, self.camera.info,
                                             self.detector, options)
        self._stop = threading.Event()

    def serve_config(self, config_path: str, restart) -> LiveConfig:
        """Live config: the log level applies at once, any other change restarts the lane."""
        return LiveConfig(CheckoutConfig, self.cfg, {"log.": apply_log_level}, restart=restart)

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.camera.capture(timeout_s=0.5)
            except Exception:
                log.exception("camera capture failed; retrying")
                self._stop.wait(0.5)
                continue
            if frame is not None:
                self.queue.put(frame)
            elif self.camera.finished:
                return

    def step(self, timeout_s: float = 0.1) -> None:
        """One iteration of the processing loop."""
        frame = self.queue.get(timeout_s)
        if self.pos is not None:
            for item in self.pos.poll():
                self.lane.on_pos(item)
        if frame is not None:
            self.lane.on_frame(self.pipeline.process(frame))
        self.lane.tick(self.clock.monotonic())

    def run(self, stop: threading.Event) -> None:
        """Capture in a thread, process here (a heartbeat per pass), until ``stop`` is set."""
        capture = threading.Thread(target=self._capture_loop, name="camera", daemon=True)
        capture.start()
        try:
            while not stop.is_set():
                self.step()
                self.sink.heartbeat()
        finally:
            self.close()
            capture.join(timeout=2.0)

    def close(self) -> None:
        self._stop.set()
        if self._scanner is not None:
            self._scanner.stop()
        if self.pos is not None:
            self.pos.close()
        self.camera.close()
        self.detector.close()


def build(cfg: CheckoutConfig, sink: EventSink, clock, **parts) -> CheckoutApp:
    """The lane app from its config (``AppSpec.build``; ``parts``: camera, pos, detector)."""
    return CheckoutApp(cfg, sink, clock, **parts)
