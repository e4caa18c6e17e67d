"""Tracking codes across frames: the same code in consecutive frames is one sighting.

    >>> tracker = BarcodeTracker(max_gap_s=0.5, max_jump_px=250)
    >>> for frame, t in camera:
    ...     upd = tracker.update(reader.read(frame, t=t), t)
    ...     for s in upd.ended:          # left the scan zone: one event per item crossing
    ...         s.identity, s.first_seen, s.last_seen, s.track

Identity: the GS1 item key (GTIN-14, plus serial when carried) when the content is a GS1 item,
so an EAN-13 and a DataBar read of one item continue the same sighting; else format and raw
bytes (door QR codes).  A read joins the open sighting of the same identity whose predicted
position (constant velocity) is nearest and within ``max_jump_px``; two identical items in view
at once stay two sightings.  A sighting ends when not seen for more than ``max_gap_s``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from storeedge.native import gs1
from storeedge.native.barcode import Barcode
from storeedge.native.exc import NativeInputError


class TrackPoint(NamedTuple):
    """Where a code was seen: time (s) and centre (x, y) px."""

    t: float
    x: float
    y: float


@dataclass
class Sighting:
    """One code seen over consecutive frames.  Times in seconds, positions in pixels."""

    id: int
    identity: tuple
    text: str
    format: str
    key: gs1.ItemKey | None
    first_seen: float
    last_seen: float
    track: list[TrackPoint] = field(default_factory=list)
    reads: int = 0
    formats: set[str] = field(default_factory=set)

    def predict(self, t: float) -> tuple[float, float]:
        """Expected centre at time ``t`` (s), from the last two track points."""
        last = self.track[-1]
        if len(self.track) < 2 or last.t <= self.track[-2].t:
            return (last.x, last.y)
        prev = self.track[-2]
        k = (t - last.t) / (last.t - prev.t)
        return (last.x + k * (last.x - prev.x), last.y + k * (last.y - prev.y))


class TrackUpdate(NamedTuple):
    """Result of one :meth:`BarcodeTracker.update`: sightings started, continued, ended."""

    started: list[Sighting]
    continued: list[Sighting]
    ended: list[Sighting]


def identity_of(bc: Barcode, scheme: gs1.VariableMeasureScheme | None
                ) -> tuple[tuple, gs1.ItemKey | None]:
    """(identity tuple, GS1 key or None) of a read."""
    try:
        key = bc.item_key(scheme)
    except gs1.GS1Error:
        return ("raw", bc.format, bc.raw), None
    return ("gs1", key.gtin14, key.serial), key


class BarcodeTracker:
    """Joins per-frame reads into sightings.

    ``max_gap_s``: a sighting not seen for longer than this (s) ends; ``max_jump_px``: the
    largest distance (px) between a read and a sighting's predicted position; ``max_points``:
    track points kept per sighting (oldest dropped).
    """

    def __init__(self, *, max_gap_s: float = 0.5, max_jump_px: float = 250.0,
                 max_points: int = 256,
                 scheme: gs1.VariableMeasureScheme | None = gs1.DEFAULT_SCHEME) -> None:
        for name, v in (("max_gap_s", max_gap_s), ("max_jump_px", max_jump_px)):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise NativeInputError(f"{name} must be a positive number, got {v!r}")
        if not isinstance(max_points, int) or max_points < 2:
            raise NativeInputError(f"max_points must be an int >= 2, got {max_points!r}")
        self.max_gap_s = float(max_gap_s)
        self.max_jump_px = float(max_jump_px)
        self.max_points = max_points
        self.scheme = scheme
        self._open: list[Sighting] = []
        self._next_id = 1
        self._last_t: float | None = None

    @property
    def active(self) -> list[Sighting]:
        """Sightings still open."""
        return list(self._open)

    def update(self, reads: list[Barcode], t: float) -> TrackUpdate:
        """Add one frame's ``reads`` taken at time ``t`` (s, non-decreasing)."""
        self._check_time(t)
        ended = self._expire(t)
        started, continued = [], []
        for bc in reads:
            ident, key = identity_of(bc, self.scheme)
            s = self._match(ident, bc, t, exclude=continued + started)
            if s is None:
                s = self._start(ident, key, bc, t)
                started.append(s)
            else:
                continued.append(s)
            self._add(s, bc, t)
        return TrackUpdate(started, continued, ended)

    def close_all(self) -> list[Sighting]:
        """End every open sighting (e.g. at shutdown) and return them."""
        ended, self._open = self._open, []
        return ended

    def _check_time(self, t: float) -> None:
        if not isinstance(t, (int, float)) or not math.isfinite(t):
            raise NativeInputError(f"t must be a finite number of seconds, got {t!r}")
        if self._last_t is not None and t < self._last_t:
            raise NativeInputError(f"time went backwards: {t} < {self._last_t} s")
        self._last_t = float(t)

    def _expire(self, t: float) -> list[Sighting]:
        ended = [s for s in self._open if t - s.last_seen > self.max_gap_s]
        self._open = [s for s in self._open if t - s.last_seen <= self.max_gap_s]
        return ended

    def _match(self, ident: tuple, bc: Barcode, t: float, exclude: list) -> Sighting | None:
        best, best_d = None, self.max_jump_px
        for s in self._open:
            if s.identity != ident or any(s is e for e in exclude):
                continue
            d = math.dist(s.predict(t), bc.center)
            if d <= best_d:
                best, best_d = s, d
        return best

    def _start(self, ident: tuple, key, bc: Barcode, t: float) -> Sighting:
        s = Sighting(self._next_id, ident, bc.text, bc.format, key, t, t)
        self._next_id += 1
        self._open.append(s)
        return s

    def _add(self, s: Sighting, bc: Barcode, t: float) -> None:
        s.last_seen = t
        s.reads += 1
        s.formats.add(bc.format)
        s.track.append(TrackPoint(float(t), bc.center.x, bc.center.y))
        if len(s.track) > self.max_points:
            del s.track[0]
