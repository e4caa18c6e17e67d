"""Pure numpy twin of the motion kernel (exact integer arithmetic, same results)."""
from __future__ import annotations

import numpy as np

BACKEND = "python"


def step(y, cfg, bg: np.ndarray, small: np.ndarray, counts: np.ndarray) -> int:
    """One frame: box-downscale ``y`` into ``small`` (Q8 levels), count changed pixels per cell
    into ``counts``, move ``bg`` (Q8) towards ``small`` by alpha, return the changed total.

    A pixel changed when |small - bg| > threshold (both Q8), compared before the update.
    """
    f, c = cfg.downscale, cfg.cell
    sh, sw = small.shape
    area = f * f
    block = np.asarray(y)[:sh * f, :sw * f].reshape(sh, f, sw, f).sum(axis=(1, 3), dtype=np.int64)
    sq = (block * 256 + area // 2) // area
    small[...] = sq
    b = bg.astype(np.int64)
    changed = np.abs(sq - b) > cfg.threshold_q8
    rows, cols = counts.shape
    padded = np.zeros((rows * c, cols * c), np.int32)
    padded[:sh, :sw] = changed
    counts[...] = padded.reshape(rows, c, cols, c).sum(axis=(1, 3))
    bg[...] = b + (((sq - b) * cfg.alpha_q15) >> 15)
    return int(changed.sum())
