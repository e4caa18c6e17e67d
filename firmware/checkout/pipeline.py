"""Frame pipeline: bounded queue -> foreground (motion gate) -> hand detector on the moving
region -> tracking with zones -> barcode reads on the item -> completed item passes.

:class:`FrameQueue` sits between the capture thread and the pipeline: it never blocks the
camera; when full it drops the oldest frame and counts it (frigate's policy). A gap between
frames longer than ``blind_after_s`` is a blind interval: tracks are dropped and the interval
is reported, so nothing is inferred about what happened while the lane was unseen.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from storeedge.drivers.camera import Frame
from storeedge.firmware.checkout.codes import item_key
from storeedge.firmware.checkout.config import LaneSection
from storeedge.firmware.checkout.detector.base import Detector, NoDetector
from storeedge.firmware.checkout.foreground import ForegroundModel, ForegroundParams
from storeedge.firmware.checkout.quality import ImageQuality, measure
from storeedge.firmware.checkout.tracker import (BAG, CodeSeen, ItemPass, Track, Tracker,
                                                  TrackerParams, Zones)
from storeedge.native.barcode import parse_formats, read_barcodes


class FrameQueue:
    """Bounded FIFO of frames: ``put`` never blocks; when full the oldest frame is dropped and
    counted in ``dropped``. ``get(timeout_s)`` returns a frame or None."""

    def __init__(self, maxsize: int = 4):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._q: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self.maxsize, self.dropped, self.put_count = maxsize, 0, 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if len(self._q) >= self.maxsize:
                self._q.popleft()
                self.dropped += 1
            self._q.append(frame)
            self.put_count += 1
            self._cond.notify()

    def get(self, timeout_s: float | None = None) -> Frame | None:
        with self._cond:
            if not self._q and not self._cond.wait_for(lambda: bool(self._q), timeout_s):
                return None
            return self._q.popleft()

    def __len__(self) -> int:
        with self._cond:
            return len(self._q)


class BlindInterval(NamedTuple):
    """The lane was not seen from ``t0`` to ``t1`` (s, sensor clock)."""

    t0: float
    t1: float


class FrameResult(NamedTuple):
    """What one frame produced: completed passes, a blind interval that just ended, and the
    image quality when it was measured on this frame."""

    passes: list[ItemPass]
    blind: BlindInterval | None
    quality: ImageQuality | None = None
    pending: tuple[float, ...] = ()      # scan-zone entry times (s) of items still moving


@dataclass
class PipelineParams:
    """``lane``: the config's lane section as it is (geometry as fractions of the width, read
    cadence in frames, blind threshold in s); ``detect_every``: the detector's cadence
    (frames, ``checkout.detector.detect_every``); the rest are fixed image-quality knobs."""

    lane: LaneSection = field(default_factory=LaneSection)
    detect_every: int = 2
    quality_every: int = 5
    denoise_sigma: float = 3.0     # main-stream noise (levels) from which the detector's
    dark_luma: float = 80.0        # input is box-filtered 3x3 / brightened (mean luma below)
    formats: str = "EAN-13, EAN-8, UPC-A, UPC-E, DataBar, DataBarExpanded, Code128, QRCode"


class LanePipeline:
    """Turns frames into :class:`ItemPass` objects (no I/O; times from the frames)."""

    def __init__(self, lores_size: tuple[int, int], main_size: tuple[int, int],
                 detector: Detector | None, params: PipelineParams | None = None,
                 fg: ForegroundParams | None = None, tracking: TrackerParams | None = None):
        self.p = params or PipelineParams()
        w, h = lores_size
        self.scale = main_size[0] / w
        self.fg = ForegroundModel(w, h, fg)
        lane = self.p.lane
        zones = Zones(lane.pick_end * w, lane.bag_start * w, w,
                      lane.direction == "right_to_left")
        self.tracker = Tracker(zones, tracking)
        self.detector = detector if detector is not None else NoDetector()
        self._detect_every = 1 if self.detector.every_frame else self.p.detect_every
        self.formats = parse_formats(self.p.formats)
        self.last_t: float | None = None
        self.frames = 0
        self.detector_runs = 0
        self.barcode_runs = 0
        self.quality: ImageQuality | None = None
        self._det_frame: tuple[int, np.ndarray] | None = None

    def process(self, frame: Frame) -> FrameResult:
        """Run one frame (frames must come in time order)."""
        blind = None
        if self.last_t is not None and frame.t - self.last_t > self.p.lane.blind_after_s:
            blind = BlindInterval(self.last_t, frame.t)
            self.tracker.reset()      # the background is kept: the counter did not move
        self.last_t = frame.t
        self.frames += 1
        blobs = self.fg.blobs(frame.lores)
        passes = self.tracker.update(frame.t, blobs, frame.lores)
        for tr in self.tracker.tracks:
            if tr.reported or tr.box.area == 0 or (tr.zones and tr.zones[-1] == BAG):
                continue
            self._evidence(tr, frame)
            self._read_codes(tr, frame)
        quality = None
        if self.frames % self.p.quality_every == 1 or self.p.quality_every == 1:
            quality = self.quality = measure(frame.t, frame.main)
        pending = tuple(tr.t_scan_in for tr in self.tracker.tracks
                        if not tr.reported and tr.t_scan_in is not None and tr.t_bag is None)
        return FrameResult(passes, blind, quality, pending)

    def _evidence(self, tr: Track, frame: Frame) -> None:
        if (self.frames + tr.id) % self._detect_every:
            return
        b = tr.box
        side = int(max(b.x1 - b.x0, b.y1 - b.y0) * 1.3)
        h, w = frame.lores.shape[0] * 2 // 3, frame.lores.shape[1]
        side = min(side, w, h)
        x0 = int(min(max(0, (b.x0 + b.x1 - side) // 2), w - side))
        y0 = int(min(max(0, (b.y0 + b.y1 - side) // 2), h - side))
        hands = self.detector.hands(lambda: self._detector_input(frame), (x0, y0, side, side))
        if hands is None:                 # no model: the blob is taken as an item
            self.tracker.note_item_evidence(tr, None)
            return
        self.detector_runs += 1
        self.tracker.note_item_evidence(tr, hands, self.fg.last_mask)

    def _detector_input(self, frame: Frame) -> np.ndarray:
        """The lores frame the hand detector sees: as captured, or (noisy / dark image, by
        the last quality measurement) denoised and brightened, once per frame."""
        q = self.quality
        if q is None or (q.noise_sigma < self.p.denoise_sigma and q.luma >= self.p.dark_luma):
            return frame.lores
        if self._det_frame is None or self._det_frame[0] != self.frames:
            gain = min(3.0, 110.0 / max(q.luma - 16.0, 10.0)) if q.luma < self.p.dark_luma \
                else 1.0
            blur = q.noise_sigma >= self.p.denoise_sigma
            self._det_frame = (self.frames, enhance_lores(frame.lores, gain, blur))
        return self._det_frame[1]

    def _read_codes(self, tr: Track, frame: Frame) -> None:
        if (self.frames + tr.id) % self.p.lane.read_every:
            return
        s, b = self.scale, tr.box
        mh, mw = frame.main.shape
        x0, y0 = max(0, int(b.x0 * s) - 16), max(0, int(b.y0 * s) - 16)
        x1, y1 = min(mw, int(b.x1 * s) + 16), min(mh, int(b.y1 * s) + 16)
        if x1 - x0 < 32 or y1 - y0 < 32:
            return
        self.barcode_runs += 1
        tr.read_tries += 1
        # the localiser finds most labels; while nothing was read on this item, every other
        # try also runs zxing-cpp over the (small) item crop, as BarcodeReader's fallback does
        full = not tr.codes and tr.read_tries % 2 == 0
        for bc in read_barcodes(frame.main[y0:y1, x0:x1], self.formats, max_candidates=4,
                                full_frame=full):
            key = item_key(bc.text, bc.format)
            if key is None:
                continue
            seen = tr.codes.get(key)
            if seen is None:
                tr.codes[key] = CodeSeen(key, bc.text, bc.format)
            else:
                seen.reads += 1


def enhance_lores(lores: np.ndarray, gain: float = 1.0, blur: bool = True) -> np.ndarray:
    """An I420 frame for the detector: luma box-filtered 3x3 (``blur``: sensor noise down
    by 3x) and the signal above black (16) and the chroma scaled by ``gain``."""
    h = lores.shape[0] * 2 // 3
    y = lores[:h].astype(np.float32)
    if blur:
        p = np.pad(y, 1, mode="edge")
        y = (p[:-2] + p[1:-1] + p[2:]) / 3.0
        y = (y[:, :-2] + y[:, 1:-1] + y[:, 2:]) / 3.0
    out = np.empty_like(lores)
    out[:h] = np.clip(16.0 + (y - 16.0) * gain + 0.5, 0, 255)
    if gain != 1.0:
        c = lores[h:].astype(np.float32)
        out[h:] = np.clip(128.0 + (c - 128.0) * gain + 0.5, 0, 255)
    else:
        out[h:] = lores[h:]
    return out
