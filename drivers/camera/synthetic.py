"""Synthetic lane camera: renders a scripted self-checkout transaction frame by frame.

Extends :class:`~storeedge.drivers.camera.base.Camera`. Frames are stamped on the sensor
timeline ``t0 + k / fps`` (s). With ``realtime=True`` capture paces itself on ``clock``
(and stamps with ``clock.monotonic()``); otherwise it runs as fast as it can. ``stalls`` lists
(start, end) script times (s) when the camera delivers nothing, as a USB/CSI hiccup would.

Example::

    cam = SyntheticLaneCamera(make_script(seed=4, level="hard"), fps=20)
    for frame in cam.frames(): ...
    cam.script.truth      # what really happened
"""
from __future__ import annotations

from storeedge.drivers.camera.base import Camera, CameraInfo, Frame
from storeedge.drivers.camera.lane import MAIN_H, MAIN_W, LaneScript, make_script


def synthetic_camera(seed: int = 0, level: str = "easy", n_items: int = 6,
                     **kwargs) -> "SyntheticLaneCamera":
    """A synthetic lane camera on a freshly drawn transaction (``kwargs``: see the class)."""
    return SyntheticLaneCamera(make_script(seed, level, n_items), **kwargs)
from storeedge.drivers.camera.render import LORES_H, LORES_W, LaneRenderer


class SyntheticLaneCamera(Camera):
    """A camera over a synthetic self-checkout lane (ground truth in ``self.script``)."""

    def __init__(self, script: LaneScript, *, fps: float = 20.0, t0: float = 0.0,
                 stalls: list[tuple[float, float]] | None = None, realtime: bool = False,
                 clock=None):
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.script = script
        self.renderer = LaneRenderer(self.script)
        self.fps = float(fps)
        self.t0 = float(t0)
        self.stalls = list(stalls or [])
        self.realtime = realtime
        self.clock = clock
        self._k = 0
        self._seq = 0
        self.info = CameraInfo("synthetic", (MAIN_W, MAIN_H), (LORES_W, LORES_H), self.fps)
        if realtime and clock is None:
            raise ValueError("realtime synthetic camera needs a clock")

    @property
    def finished(self) -> bool:
        return self._k / self.fps > self.script.duration

    def _stalled(self, ts: float) -> bool:
        return any(a <= ts < b for a, b in self.stalls)

    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        """Next frame; None when the camera is stalled or the script is over."""
        if self.finished:
            return None
        ts = self._k / self.fps
        self._k += 1
        if self.realtime:
            self.clock.sleep(max(0.0, self.t0 + ts - self.clock.monotonic()))
        if self._stalled(ts):
            return None
        main, lores = self.renderer.render(ts)
        self._seq += 1
        t = self.clock.monotonic() if self.realtime else self.t0 + ts
        return Frame(self._seq, t, main, lores)

    def frames(self):
        """Frames until the script ends (stalled frames are simply absent)."""
        while not self.finished:
            frame = self.capture()
            if frame is not None:
                yield frame
