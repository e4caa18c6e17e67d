"""Track foreground blobs across the lane's zones and report completed item passes.

The lane is split along x (lores px) into the pick area, the scan zone and the bagging area
(fractions ``pick_end`` and ``bag_start`` of the width; ``direction`` says which side the
shopper picks from). A track becomes an :class:`ItemPass` when it was first seen on the pick
side, crossed the scan zone and reached the bagging side, and carried an item: over the
frames where the detector found the whole hand (at least ``min_item_frames``), the median
foreground area outside the hand is at least ``min_item_ratio`` palm areas (scale-free, so
the camera height does not matter) (with no detector every blob counts as an item; a track on which no
hand was ever detected counts as an item too: the item hides the hand).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from storeedge.firmware.checkout.detector.base import Detection
from storeedge.firmware.checkout.foreground import Blob

PICK, SCAN, BAG = 0, 1, 2


class Zones(NamedTuple):
    """Zone boundaries in lores px along x; ``flip`` when shoppers pick from the right."""

    scan_x0: float
    scan_x1: float
    width: int
    flip: bool

    def of(self, x: float) -> int:
        """Zone (PICK, SCAN, BAG) of an x position (px)."""
        if self.flip:
            x = self.width - x
        return PICK if x < self.scan_x0 else SCAN if x < self.scan_x1 else BAG


@dataclass
class CodeSeen:
    """A code read on a track: normalised key, the decoded text and format, read count."""

    key: str
    text: str
    format: str
    reads: int = 1


@dataclass
class Track:
    """One moving thing. Times in seconds (sensor clock); boxes in lores px."""

    id: int
    t_first: float
    first_zone: int
    box: Blob
    t_last: float = 0.0
    zones: list[int] = field(default_factory=list)
    t_scan_in: float | None = None
    t_scan_out: float | None = None
    t_bag: float | None = None
    item_frames: int = 0
    hand_frames: int = 0
    unknown_frames: int = 0
    outside: list[float] = field(default_factory=list)
    read_tries: int = 0
    family: int = 0
    codes: dict[str, CodeSeen] = field(default_factory=dict)
    keyframe: tuple | None = None       # (lores frame, blob, distance to scan centre)
    reported: bool = False


@dataclass(frozen=True)
class ItemPass:
    """A completed pass: times (s) on the sensor clock, codes seen, keyframe for evidence."""

    id: int
    t_start: float
    t_scan_in: float
    t_scan_out: float
    t_end: float
    codes: tuple[CodeSeen, ...]
    keyframe: np.ndarray | None
    keybox: tuple[int, int, int, int] | None
    hand_seen: bool


@dataclass
class TrackerParams:
    """Association and item-evidence thresholds (px are lores px, times s; the item ratio is
    foreground beyond the hand divided by the squared palm size)."""

    max_jump_px: float = 40.0
    max_speed_px_s: float = 600.0
    lost_after_s: float = 0.6
    min_item_ratio: float = 0.33
    min_item_frames: int = 2
    split_gap_px: float = 24.0


class Tracker:
    """Associates blobs to tracks frame by frame and emits :class:`ItemPass` objects."""

    def __init__(self, zones: Zones, params: TrackerParams | None = None):
        self.zones = zones
        self.p = params or TrackerParams()
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self.passes_seen = 0

    def reset(self) -> None:
        """Drop every track (the camera was blind: nothing seen can be trusted)."""
        self.tracks = []

    def update(self, t: float, blobs: list[Blob], lores: np.ndarray) -> list[ItemPass]:
        """Advance to frame time ``t`` (s) with this frame's blobs; returns completed passes."""
        self._associate(t, blobs, lores)
        self.tracks = [tr for tr in self.tracks if t - tr.t_last <= self.p.lost_after_s]
        done = []
        for tr in self.tracks:
            if not tr.reported and self._complete(tr):
                family = [o for o in self.tracks if o.family == tr.family and not o.reported]
                for member in family:
                    member.reported = True
                done.append(self._to_pass(tr, family))
        return done

    def _associate(self, t: float, blobs: list[Blob], lores: np.ndarray) -> None:
        pairs = []
        for i, tr in enumerate(self.tracks):
            reach = self.p.max_jump_px + self.p.max_speed_px_s * max(0.0, t - tr.t_last)
            for j, b in enumerate(blobs):
                d = float(np.hypot(b.cx - tr.box.cx, b.cy - tr.box.cy))
                if d <= reach:
                    pairs.append((d, i, j))
        used_t, used_b = set(), set()
        for d, i, j in sorted(pairs):
            if i in used_t or j in used_b:
                continue
            used_t.add(i)
            used_b.add(j)
            self._extend(self.tracks[i], t, blobs[j], lores)
        known = list(self.tracks)
        for j, b in enumerate(blobs):
            if j not in used_b:
                tr = Track(next(self._ids), t, self.zones.of(b.cx), b, t_last=t)
                tr.family = tr.id
                parent = self._split_parent(b, known)
                if parent is not None:
                    _inherit(tr, parent)
                self._extend(tr, t, b, lores)
                self.tracks.append(tr)

    def _split_parent(self, b: Blob, tracks: list[Track]) -> Track | None:
        """The track a new blob split off from (a hand letting go of a low-contrast item
        leaves two blobs): a pass in progress whose box touches the new blob."""
        best, best_d = None, None
        for tr in tracks:
            if tr.reported or tr.first_zone != PICK or tr.t_bag is not None:
                continue
            gap_x = max(0, max(tr.box.x0, b.x0) - min(tr.box.x1, b.x1))
            gap_y = max(0, max(tr.box.y0, b.y0) - min(tr.box.y1, b.y1))
            d = max(gap_x, gap_y)
            if d <= self.p.split_gap_px and (best_d is None or d < best_d):
                best, best_d = tr, d
        return best

    def _extend(self, tr: Track, t: float, b: Blob, lores: np.ndarray) -> None:
        tr.box, tr.t_last = b, t
        zone = self.zones.of(b.cx)
        if zone == PICK and tr.zones and tr.zones[-1] != PICK:
            _restart(tr, t)                  # back on the pick side: a new pass may begin
        if not tr.zones or tr.zones[-1] != zone:
            tr.zones.append(zone)
        if tr.t_bag is not None:
            return
        if zone >= SCAN and tr.t_scan_in is None:
            tr.t_scan_in = t
        if zone == BAG:
            tr.t_bag = t
            tr.t_scan_out = t if tr.t_scan_out is None else tr.t_scan_out
        elif zone == SCAN:
            tr.t_scan_out = t
        centre = (self.zones.scan_x0 + self.zones.scan_x1) / 2
        dist = abs(b.cx - (self.zones.width - centre if self.zones.flip else centre))
        if zone == SCAN and (tr.keyframe is None or dist < tr.keyframe[2]):
            tr.keyframe = (lores, b, dist)

    def note_item_evidence(self, tr: Track, hands: list[Detection] | None,
                           mask: np.ndarray | None = None) -> None:
        """Count this frame as item (or hand-only) evidence for ``tr``; ``hands`` None means
        no detector (the blob is taken as an item); ``mask`` is the frame's foreground."""
        if hands is None:
            tr.item_frames += 1
        elif not hands:
            tr.unknown_frames += 1
        else:
            tr.hand_frames += 1
            b = tr.box
            if b.x0 <= 0 or b.x1 >= self.zones.width:
                return                    # partly out of view: the hand model cannot fit
            palm = max(max(h.x1 - h.x0, h.y1 - h.y0) for h in hands) / 2   # half-res px
            tr.outside.append(fg_outside_hands(mask, b, hands) / max(palm * palm, 1.0))

    def _complete(self, tr: Track) -> bool:
        z = tr.zones
        if tr.first_zone != PICK or BAG not in z or tr.t_scan_in is None:
            return False
        n = self.p.min_item_frames
        if tr.item_frames >= n:                       # no detector: every mover is an item
            return True
        if len(tr.outside) >= n:                      # foreground beyond the hand: an item
            return float(np.median(tr.outside)) >= self.p.min_item_ratio
        # something moving whose hand was never seen (hidden under the item)
        return tr.hand_frames == 0 and tr.unknown_frames >= n

    def _to_pass(self, tr: Track, family: list[Track]) -> ItemPass:
        """The pass of ``tr``, with the codes read on every track of its family."""
        self.passes_seen += 1
        kf, kb = (tr.keyframe[0], tr.keyframe[1]) if tr.keyframe else (None, None)
        box = (kb.x0, kb.y0, kb.x1, kb.y1) if kb is not None else None
        codes: dict[str, CodeSeen] = {}
        for member in family:
            for key, seen in member.codes.items():
                codes.setdefault(key, seen)
        return ItemPass(tr.id, tr.t_first, tr.t_scan_in, tr.t_scan_out or tr.t_bag, tr.t_bag,
                        tuple(codes.values()), kf, box, any(m.hand_frames for m in family))


def _inherit(child: Track, parent: Track) -> None:
    """A blob split off ``parent``: it continues the parent's pass (same family)."""
    child.family, child.t_first, child.first_zone = parent.family, parent.t_first, PICK
    child.zones = list(parent.zones)
    child.t_scan_in, child.t_scan_out = parent.t_scan_in, parent.t_scan_out
    child.item_frames, child.hand_frames = parent.item_frames, parent.hand_frames
    child.unknown_frames, child.outside = parent.unknown_frames, list(parent.outside)
    child.codes = dict(parent.codes)


def _restart(tr: Track, t: float) -> None:
    """Forget the pass state of a track that came back to the pick side."""
    tr.t_first, tr.first_zone, tr.zones = t, PICK, []
    tr.t_scan_in = tr.t_scan_out = tr.t_bag = None
    tr.item_frames = tr.hand_frames = tr.unknown_frames = 0
    tr.outside, tr.read_tries, tr.family = [], 0, tr.id
    tr.codes, tr.keyframe, tr.reported = {}, None, False


TILTS_DEG = (-30.0, -15.0, 0.0, 15.0, 30.0)


def fg_outside_hands(mask: np.ndarray, b: Blob, hands: list[Detection]) -> int:
    """Foreground pixels of ``mask`` (half the lores resolution) inside blob ``b``'s box that
    lie outside every detected hand (see :func:`hand_mask`). The finger direction from the
    keypoints is uncertain, so each hand is fitted at a few tilts around it and the best fit
    (fewest pixels left over) is kept."""
    y0, y1, x0, x1 = b.y0 // 2, b.y1 // 2, b.x0 // 2, b.x1 // 2
    sub = mask[y0:y1, x0:x1]
    if not hands:
        return int(sub.sum())
    yy, xx = np.mgrid[y0:y1, x0:x1]
    xs, ys = xx * 2.0 + 1.0, yy * 2.0 + 1.0       # lores px of each mask pixel's centre
    left = sub
    for h in hands:
        best = None
        for tilt in TILTS_DEG:
            rest = left & ~hand_mask(h, xs, ys, tilt)
            if best is None or rest.sum() < best.sum():
                best = rest
        left = best
    return int(left.sum())


def _capsule(xs, ys, p, q, r: float) -> np.ndarray:
    """Points within ``r`` px of segment p-q."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    ll = dx * dx + dy * dy or 1.0
    t = np.clip(((xs - p[0]) * dx + (ys - p[1]) * dy) / ll, 0.0, 1.0)
    return (xs - p[0] - t * dx) ** 2 + (ys - p[1] - t * dy) ** 2 <= r * r


def hand_mask(d: Detection, xs: np.ndarray, ys: np.ndarray, tilt_deg: float = 0.0
              ) -> np.ndarray:
    """Pixels (coordinate grids, px) covered by the hand of palm detection ``d``: the palm
    box (grown 40 %), one finger per knuckle keypoint extending 1.2 palm widths along the
    finger direction (perpendicular to the knuckle line), the thumb, and a forearm of 3 palm
    widths behind the palm
    (margins generous: the palm box of the model is smaller than the palm).
    Without plausible keypoints: the palm box grown to MediaPipe's 2.6x hand ROI, fingers
    pointing away from the shopper (up in the image)."""
    cx, cy = (d.x0 + d.x1) / 2, (d.y0 + d.y1) / 2
    s = max(d.x1 - d.x0, d.y1 - d.y0)
    ux, uy = _direction(d)
    c, sn = math.cos(math.radians(tilt_deg)), math.sin(math.radians(tilt_deg))
    ux, uy = ux * c - uy * sn, ux * sn + uy * c
    a = (xs - cx) * ux + (ys - cy) * uy
    b = np.abs(-(xs - cx) * uy + (ys - cy) * ux)
    if not _keypoints_plausible(d, s):
        return (a >= -0.8 * s) & (a <= 1.8 * s) & (b <= 1.3 * s)
    m = (np.abs(a) <= 0.7 * s) & (b <= 0.7 * s)
    kp = [(cx + (x - cx) * c - (y - cy) * sn, cy + (x - cx) * sn + (y - cy) * c)
          for x, y in d.keypoints]
    for k in (1, 2, 3, 4):
        tip = (kp[k][0] + ux * 1.2 * s, kp[k][1] + uy * 1.2 * s)
        m |= _capsule(xs, ys, kp[k], tip, 0.18 * s)
    tx, ty = kp[6][0] - kp[5][0], kp[6][1] - kp[5][1]
    m |= _capsule(xs, ys, kp[5], (kp[6][0] + 1.8 * tx, kp[6][1] + 1.8 * ty), 0.3 * s)
    wrist = (cx - ux * 0.3 * s, cy - uy * 0.3 * s)
    elbow = (cx - ux * 3.5 * s, cy - uy * 3.5 * s)
    return m | _capsule(xs, ys, wrist, elbow, 0.6 * s)


def _keypoints_plausible(d: Detection, s: float) -> bool:
    """Seven keypoints with the knuckles spread across 0.4-2 palm widths (the model sometimes
    returns a good box with collapsed keypoints)."""
    if len(d.keypoints) < 7:
        return False
    span = math.dist(d.keypoints[1], d.keypoints[4])
    return 0.4 * s <= span <= 2.0 * s


def _direction(d: Detection) -> tuple[float, float]:
    """Unit vector along the fingers: perpendicular to the knuckle line (index -> pinky
    keypoints), pointing away from the wrist; default fingers up."""
    s = max(d.x1 - d.x0, d.y1 - d.y0)
    if not _keypoints_plausible(d, s):
        return 0.0, -1.0
    kp = d.keypoints
    vx, vy = kp[4][0] - kp[1][0], kp[4][1] - kp[1][1]
    ux, uy = -vy, vx
    if ux * (kp[2][0] - kp[0][0]) + uy * (kp[2][1] - kp[0][1]) < 0:
        ux, uy = -ux, -uy
    n = math.hypot(ux, uy) or 1.0
    return ux / n, uy / n
