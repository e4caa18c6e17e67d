"""Image quality of the lane camera: sensor noise and exposure, and the "degraded" state.

:func:`measure` estimates, on the main-stream luma, the noise standard deviation (grey
levels) from differences of horizontally adjacent pixels (median absolute deviation, robust
to edges: most of a counter is flat) and the mean brightness. :class:`QualityGate` smooths
them over frames and says when the image is too poor to judge a pass: the signal above black
(luma - 16) is less than ``min_snr`` noise sigmas, or the luma is below ``min_luma``. It
enters that state after ``enter_s`` seconds of poor frames and leaves it after ``leave_s``
seconds of good ones; passes seen while degraded are not judged (no alert from guesses).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

MAD_SIGMA = 1.4826
BLACK = 16.0                 # video-range black level of the YUV luma (grey levels)


class ImageQuality(NamedTuple):
    """One frame's estimate: ``t`` (s, sensor clock), noise sigma and mean luma (levels)."""

    t: float
    noise_sigma: float
    luma: float


def measure(t: float, luma: np.ndarray, row_step: int = 6) -> ImageQuality:
    """Noise sigma and mean luma of a uint8 luma image (every ``row_step``-th row)."""
    rows = luma[::row_step].astype(np.int16)
    d = (rows[:, 1:] - rows[:, :-1]).ravel()
    med = np.median(d)
    sigma = MAD_SIGMA * float(np.median(np.abs(d - med))) / np.sqrt(2.0)
    # a flat difference image (|d| of 0 everywhere on a clean frame) gives MAD 0: use the
    # mean absolute difference of the quiet half as a floor for quantised noise
    if sigma == 0.0:
        small = np.abs(d[np.abs(d) <= 2])
        sigma = float(small.mean()) * np.sqrt(np.pi / 2) / np.sqrt(2.0) if small.size else 0.0
    return ImageQuality(t, sigma, float(rows.mean()))


@dataclass
class QualityParams:
    """Degraded when (luma - 16) < ``min_snr`` * sigma or luma < ``min_luma`` (levels);
    ``alpha``: smoothing per measurement; ``enter_s``/``leave_s``: hysteresis (s)."""

    min_snr: float = 3.0
    min_luma: float = 28.0
    alpha: float = 0.2
    enter_s: float = 1.0
    leave_s: float = 3.0
    keep_spans_s: float = 120.0


@dataclass
class QualityGate:
    """Smoothed quality and the degraded state with its reason (empty when fine)."""

    p: QualityParams = field(default_factory=QualityParams)
    last: ImageQuality | None = None
    reason: str = ""
    spans: list[tuple[float, float]] = field(default_factory=list)
    _since: float | None = None          # start of the current poor (or good) run
    _start: float | None = None          # start of the degraded interval

    def update(self, q: ImageQuality) -> str | None:
        """Feed a measurement; returns the new reason ("" = ok again) when the state
        changed, else None."""
        if self.last is None:
            sm = q
        else:
            a = self.p.alpha
            sm = ImageQuality(q.t, self.last.noise_sigma + a * (q.noise_sigma -
                                                                self.last.noise_sigma),
                              self.last.luma + a * (q.luma - self.last.luma))
        self.last = sm
        poor = self._poor(sm)
        if bool(poor) == bool(self.reason):
            self._since = None
            if self.reason:
                self.reason = poor
            return None
        self._since = q.t if self._since is None else self._since
        if q.t - self._since < (self.p.leave_s if self.reason else self.p.enter_s):
            return None
        self._since = None
        if poor:
            self._start = q.t
            self.reason = poor
        else:
            self.spans.append((self._start, q.t))
            self.spans = [s for s in self.spans if q.t - s[1] <= self.p.keep_spans_s]
            self.reason = ""
        return self.reason

    def _poor(self, q: ImageQuality) -> str:
        if q.luma < self.p.min_luma:
            return f"image too dark (luma {q.luma:.0f})"
        if q.luma - BLACK < self.p.min_snr * q.noise_sigma:
            return f"image noise sigma {q.noise_sigma:.1f} at luma {q.luma:.0f}"
        return ""

    def overlaps(self, t0: float, t1: float) -> bool:
        """True when [t0, t1] (s) touches a degraded interval (or the current one)."""
        if self.reason and self._start is not None and t1 >= self._start:
            return True
        return any(a <= t1 and t0 <= b for a, b in self.spans)
