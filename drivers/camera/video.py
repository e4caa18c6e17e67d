"""Video replay backend: a lane camera's recorded footage (H.264 MP4, FFV1 MKV... anything the
FFmpeg bundled with PyAV decodes) played as camera frames.

Each decoded frame gives ``main`` = its luma (Y plane, untouched: a lossless file replays
bit-exact) and ``lores`` = an I420 image ``downscale`` times smaller (box average of the Y, U
and V planes, as an ISP's scaler would). ``t`` is the frame's presentation time (s), so gaps
and variable frame rates in the file are kept; with ``realtime=True`` frames are paced on
``clock``. :func:`write_video` encodes frames (main luma + lores chroma, upsampled) to a file,
losslessly by default (libx264 ``qp=0``), for tests and for :mod:`recording`.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterable

import numpy as np

from storeedge.drivers.camera.base import Camera, CameraInfo, Frame
from storeedge.drivers.camera.exc import CameraUnavailable, ReplayError
from storeedge.drivers.camera.pacing import RealtimePacer


def _av():
    try:
        import av
    except ImportError as exc:                      # pragma: no cover - av is a dependency
        raise CameraUnavailable(f"video replay needs PyAV (pip install av): {exc}") from None
    return av


def _box(plane: np.ndarray, k: int, out_h: int, out_w: int) -> np.ndarray:
    """Box-average ``plane`` by ``k`` (cropping to a whole number of blocks) to out_h x out_w."""
    h, w = out_h * k, out_w * k
    blk = plane[:h, :w].reshape(out_h, k, out_w, k).astype(np.uint32).sum(axis=(1, 3))
    return ((blk + (k * k) // 2) // (k * k)).astype(np.uint8)


def lores_from_yuv420(y: np.ndarray, u: np.ndarray, v: np.ndarray, k: int) -> np.ndarray:
    """I420 (h * 3 // 2, w) lores image ``k`` times smaller than luma ``y`` (H, W); ``u``/``v``
    are the (H/2, W/2) chroma planes. Width is made even and height a multiple of 4."""
    w = (y.shape[1] // k) // 2 * 2
    h = (y.shape[0] // k) // 4 * 4
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = _box(y, k, h, w)
    out[h:h + h // 4] = _box(u, k, h // 2, w // 2).reshape(h // 4, w)
    out[h + h // 4:] = _box(v, k, h // 2, w // 2).reshape(h // 4, w)
    return out


class VideoReplayCamera(Camera):
    """Plays the video file ``source`` (``downscale``: main/lores size ratio)."""

    def __init__(self, source: str, *, downscale: int = 3, realtime: bool = False,
                 clock=None, loop: bool = False, fps: float | None = None):
        if not os.path.isfile(source):
            raise ReplayError(f"video {source!r} does not exist")
        if realtime and clock is None:
            raise ValueError("realtime replay needs a clock")
        self.source, self.k = source, int(downscale)
        self.realtime, self.clock, self.loop = realtime, clock, loop
        self._container = None
        self._open()
        first = self._peek
        rate = float(self._stream.average_rate or self._stream.guessed_rate or fps or 15.0)
        lores = first.lores.shape
        self.info = CameraInfo("video", (first.main.shape[1], first.main.shape[0]),
                               (lores[1], lores[0] * 2 // 3), fps or rate)
        self._seq, self._lap_t, self._done = 0, 0.0, False
        self._pacer = RealtimePacer(clock) if realtime else None

    def _open(self) -> None:
        av = _av()
        try:
            self._container = av.open(self.source)
            self._stream = self._container.streams.video[0]
            self._iter = self._container.decode(self._stream)
            self._peek = self._next()
        except (av.FFmpegError, IndexError, StopIteration) as exc:
            raise ReplayError(f"cannot decode video {self.source!r}: {exc}") from None
        if self._peek is None:
            raise ReplayError(f"video {self.source!r} has no frames")
        self._t_first = self._peek.t

    def _next(self) -> Frame | None:
        try:
            vf = next(self._iter)
        except StopIteration:
            return None
        if vf.format.name != "yuv420p":
            vf = vf.reformat(format="yuv420p")
        arr = vf.to_ndarray()                  # I420: (H * 3 // 2, W)
        h, w = vf.height, vf.width
        y = arr[:h]
        u = arr[h:h + h // 4].reshape(h // 2, w // 2)
        v = arr[h + h // 4:h * 3 // 2].reshape(h // 2, w // 2)
        t = float(vf.time) if vf.time is not None else 0.0
        return Frame(0, t, np.ascontiguousarray(y), lores_from_yuv420(y, u, v, self.k))

    @property
    def finished(self) -> bool:
        return self._done

    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        """Next frame (None when the file ended and ``loop`` is off)."""
        if self._done:
            return None
        f, self._peek = self._peek, None
        if f is None:
            f = self._next()
        if f is None:
            if not self.loop:
                self._done = True
                self.close()
                return None
            self._lap_t = self._last_t + 1.0 / self.info.fps
            self.close()
            self._open()
            f, self._peek = self._peek, None
        t = f.t - self._t_first + self._lap_t
        self._last_t = t
        if self._pacer is not None:
            t = self._pacer.pace(t)
        self._seq += 1
        return Frame(self._seq, t, f.main, f.lores)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def write_video(path: str, frames: Iterable[Frame], fps: float, *, lossless: bool = True,
                codec: str = "libx264") -> int:
    """Encode frames to ``path`` (container from the extension): Y = ``main``, chroma =
    ``lores`` chroma upsampled to main/2 (nearest). ``lossless``: x264 ``qp=0`` (or FFV1);
    else CRF 20. Frame times become presentation times (1/1000 s). Returns frames written."""
    av = _av()
    out = av.open(path, "w")
    n = 0
    try:
        stream = None
        for f in frames:
            if stream is None:
                stream = _video_stream(out, codec, f.main.shape, fps, lossless)
            vf = av.VideoFrame.from_ndarray(yuv420_of(f), format="yuv420p")
            vf.pts, vf.time_base = int(round(f.t * 1000)), Fraction(1, 1000)
            for pkt in stream.encode(vf):
                out.mux(pkt)
            n += 1
        if stream is not None:
            for pkt in stream.encode():
                out.mux(pkt)
    finally:
        out.close()
    if not n:
        raise ReplayError("nothing to write")
    return n


def _video_stream(out, codec: str, shape: tuple[int, int], fps: float, lossless: bool):
    stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    stream.height, stream.width = shape
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
    if codec == "libx264":
        stream.options = {"qp": "0", "preset": "ultrafast"} if lossless else {"crf": "20"}
    return stream


def yuv420_of(f: Frame) -> np.ndarray:
    """A full-size I420 image of frame ``f``: its main luma and its lores chroma upsampled
    (nearest) to half the main size (edges repeated when the sizes do not divide)."""
    h, w = f.main.shape
    lh = f.lores.shape[0] * 2 // 3
    lw = f.lores.shape[1]
    u = f.lores[lh:lh + lh // 4].reshape(lh // 2, lw // 2)
    v = f.lores[lh + lh // 4:].reshape(lh // 2, lw // 2)
    ry = np.minimum((np.arange(h // 2) * (lh // 2)) // (h // 2), lh // 2 - 1)
    rx = np.minimum((np.arange(w // 2) * (lw // 2)) // (w // 2), lw // 2 - 1)
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = f.main
    out[h:h + h // 4] = u[ry][:, rx].reshape(h // 4, w)
    out[h + h // 4:] = v[ry][:, rx].reshape(h // 4, w)
    return out
