"""POS timing learned online: how late the POS lines reach the lane, and how much that varies.

Every pass whose code the camera read consistently and that a POS scan of the same code
followed gives one sample: the scan's arrival time minus the time the item entered
(``lag_in``) and left (``lag_out``) the scan zone (s). From the last ``keep`` samples the
match window of a slot is derived robustly (median and MAD, so a rescan minutes later or one
stuck line does not move it):

* its core (where a scan fits perfectly) is the item's time over the scanner shifted by
  ``shift_s``, the median ``lag_out`` when positive (a late POS), so the kernel's time gap
  measures the distance to where the line is expected and the previous item's late line is
  kept out;
* it closes at ``t_scan_out + close_s`` with ``close_s = max(shift_s + post_s, hi)``, ``hi``
  the high end of ``lag_out`` plus ``margin_s`` (its 95th percentile over the kept samples:
  the largest 5 %, two of 40, are ignored; the largest sample plus ``unsure_s`` per
  missing sample while fewer than ``min_samples`` were seen; ``cold_post_s`` before the
  first sample, so a lane on a slow POS does not cry wolf while it has learned nothing),
  and opens as far before the core as it closes after it (at least ``pre_s``).

The published delay (:meth:`PosTiming.status`) is the median of the scan's arrival minus the
middle of the item's time over the scanner (s). The state survives restarts: :meth:`save`
writes it atomically (temp file, fsync, rename) to the lane's data directory.
"""
from __future__ import annotations

import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

log = logging.getLogger("storeedge.checkout")

MAD_SIGMA = 1.4826          # MAD -> standard deviation of a normal distribution


@dataclass
class TimingParams:
    """Learning limits (s, counts). ``max_lag_s``: a same-code scan later than this after the
    item left the scanner is not a timing sample (a rescan, not latency)."""

    keep: int = 40
    min_samples: int = 8
    quantile: float = 0.95
    margin_s: float = 0.25
    unsure_s: float = 0.06
    cold_post_s: float = 2.5
    max_lag_s: float = 4.5
    max_close_s: float = 5.0


class TimingSample(NamedTuple):
    """One matched pass: scan arrival minus scan-zone entry / exit (s)."""

    lag_in: float
    lag_out: float


class Window(NamedTuple):
    """Where a slot may take a scan (s): its time over the scanner shifted by ``shift_s``,
    ``pre_s`` before to ``post_s`` after that; it is decided ``close_s`` after the item left
    the scan zone (``shift_s + post_s``)."""

    shift_s: float
    pre_s: float
    post_s: float

    @property
    def close_s(self) -> float:
        return self.shift_s + self.post_s


class TimingStatus(NamedTuple):
    """Published state: median delay and spread (s), current window close (s), samples."""

    delay_s: float | None
    spread_s: float | None
    close_s: float
    samples: int


class PosTiming:
    """The lane's learned POS timing (one per lane, shared by its transactions)."""

    def __init__(self, params: TimingParams | None = None, path: str | None = None):
        self.p = params or TimingParams()
        self.path = path
        self.samples: deque[TimingSample] = deque(maxlen=self.p.keep)
        self.rejected = 0
        self._dirty = 0
        if path:
            self._load(path)

    def add(self, t_scan_in: float, t_scan_out: float, scan_t: float) -> bool:
        """Learn from a pass (scan zone entry/exit, s) and its same-code scan (arrival, s);
        returns False when the pair is implausible as latency (not learned, counted)."""
        lag_in, lag_out = scan_t - t_scan_in, scan_t - t_scan_out
        if lag_in < -2.0 or lag_out > self.p.max_lag_s:
            self.rejected += 1
            return False
        self.samples.append(TimingSample(round(lag_in, 4), round(lag_out, 4)))
        self._dirty += 1
        return True

    def window(self, pre_s: float, post_s: float) -> Window:
        """The window for a slot, given the configured minimum ``pre_s``/``post_s`` (s)."""
        p, n = self.p, len(self.samples)
        if n == 0:                       # nothing known yet: allow a slow POS
            return Window(0.0, pre_s, max(post_s, p.cold_post_s))
        lout = np.array([s.lag_out for s in self.samples])
        shift = max(0.0, float(np.median(lout)))
        if n < p.min_samples:
            hi = float(lout.max()) + p.margin_s + p.unsure_s * (p.min_samples - n)
        else:
            k = int(round(n * (1.0 - p.quantile)))       # the k largest are ignored
            hi = float(np.sort(lout)[n - 1 - k]) + p.margin_s
        post = min(max(post_s, hi - shift), p.max_close_s - shift)
        return Window(shift, max(pre_s, post), post)

    def status(self, pre_s: float = 0.6, post_s: float = 0.8) -> TimingStatus:
        """Median delay (scan arrival minus the middle of the item's time over the scanner)
        and its spread (scaled MAD), in s; None before the first sample."""
        close = self.window(pre_s, post_s).close_s
        if not self.samples:
            return TimingStatus(None, None, close, 0)
        mid = np.array([(s.lag_in + s.lag_out) / 2 for s in self.samples])
        med = float(np.median(mid))
        spread = MAD_SIGMA * float(np.median(np.abs(mid - med)))
        return TimingStatus(round(med, 3), round(spread, 3), round(close, 3), len(mid))

    def save(self, force: bool = False) -> None:
        """Write the samples atomically to ``path`` (if any, and if something changed)."""
        if not self.path or not (self._dirty or force):
            return
        tmp = f"{self.path}.tmp"
        doc = {"v": 1, "samples": [list(s) for s in self.samples]}
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._dirty = 0

    def _load(self, path: str) -> None:
        if not os.path.exists(path):
            return
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            rows = [TimingSample(float(a), float(b)) for a, b in doc["samples"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("POS timing state %s unreadable (%s); learning again", path, exc)
            return
        good = [r for r in rows if np.isfinite(r).all() and r.lag_out <= self.p.max_lag_s]
        if len(good) < len(rows):
            log.warning("POS timing state %s: %d bad samples ignored", path, len(rows) - len(good))
        self.samples.extend(good[-self.p.keep:])
