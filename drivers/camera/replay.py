"""Replay backend: frames from an image folder or a recording (.npz), in real time or as fast
as possible.

* Image folder: files sorted by name (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``); each becomes the
  main luma and a lores I420 image ``downscale`` times smaller; frame times are ``k / fps``.
* Recording: an ``.npz`` written by :func:`save_recording` with arrays ``t`` (s), ``main``
  (N, H, W) and ``lores`` (N, h * 3 // 2, w); the original timestamps (and gaps) are kept.
"""
from __future__ import annotations

import os

import numpy as np

from storeedge.drivers.camera.base import Camera, CameraInfo, Frame, i420_from_rgb
from storeedge.drivers.camera.exc import ReplayError
from storeedge.drivers.camera.pacing import RealtimePacer

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")


def save_recording(path: str, frames: list[Frame]) -> None:
    """Write frames to ``path`` (.npz) for :class:`ReplayCamera`."""
    if not frames:
        raise ReplayError("nothing to record")
    np.savez_compressed(path, t=np.array([f.t for f in frames]),
                        main=np.stack([f.main for f in frames]),
                        lores=np.stack([f.lores for f in frames]))


class ReplayCamera(Camera):
    """Replays ``source`` (image folder or .npz); ``realtime`` paces frames on ``clock``."""

    def __init__(self, source: str, *, fps: float = 20.0, downscale: int = 3,
                 realtime: bool = False, clock=None, loop: bool = False):
        self.source, self.fps, self.downscale = source, float(fps), int(downscale)
        self.realtime, self.clock, self.loop = realtime, clock, loop
        if realtime and clock is None:
            raise ValueError("realtime replay needs a clock")
        self._load()
        self._k = 0
        self._seq = 0
        self._pacer = RealtimePacer(clock) if realtime else None

    def _load(self) -> None:
        if os.path.isdir(self.source):
            names = sorted(n for n in os.listdir(self.source) if n.lower().endswith(IMAGE_EXT))
            if not names:
                raise ReplayError(f"no images in {self.source}")
            self._paths = [os.path.join(self.source, n) for n in names]
            self._times = np.arange(len(names)) / self.fps
            self._rec = None
            first = self._image(0)
        elif self.source.endswith(".npz") and os.path.isfile(self.source):
            self._rec = np.load(self.source)
            self._times = self._rec["t"] - self._rec["t"][0]
            first = Frame(0, 0.0, self._rec["main"][0], self._rec["lores"][0])
        else:
            raise ReplayError(f"replay source {self.source!r} is neither a folder nor a .npz")
        lh, lw = first.lores.shape
        self.info = CameraInfo("replay", (first.main.shape[1], first.main.shape[0]),
                               (lw, lh * 2 // 3), self.fps)

    def _image(self, k: int) -> Frame:
        from PIL import Image

        with Image.open(self._paths[k]) as img:
            rgb = img.convert("RGB")
            w, h = (rgb.width // (2 * self.downscale)) * 2, (rgb.height // (4 * self.downscale)) * 4
            lores = i420_from_rgb(np.asarray(rgb.resize((w, h), Image.BILINEAR)))
            return Frame(k, float(self._times[k]), np.asarray(rgb.convert("L")), lores)

    @property
    def finished(self) -> bool:
        return not self.loop and self._k >= len(self._times)

    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        if self.finished:
            return None
        k = self._k % len(self._times)
        lap = self._k // len(self._times)
        self._k += 1
        span = float(self._times[-1]) + 1.0 / self.fps
        t = float(self._times[k]) + lap * span
        if self._pacer is not None:
            t = self._pacer.pace(t)
        self._seq += 1
        if self._rec is None:
            f = self._image(k)
            return Frame(self._seq, t, f.main, f.lores)
        return Frame(self._seq, t, self._rec["main"][k], self._rec["lores"][k])
