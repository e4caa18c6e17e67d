"""Pure numpy twin of the preprocessing kernel (same names, same integer pipeline).

Both backends: Q8 vertical and Q8 horizontal weights (the Cython kernel filters rows first,
this twin columns first: the Q16 integer results are identical), then the float32 colour
matrix t = ((m0*Y + m1*U) + m2*V) + (m3 + 0.5), level = trunc(clip(t, 0, 255)), and the
float32 output affine.  Results equal the Cython kernel's except where
the C compiler fuses a multiply-add (FMA), which can move a value across a rounding boundary
by one level.
"""
from __future__ import annotations

import numpy as np

BACKEND = "python"
KIND_U8, KIND_F32, KIND_I8 = 0, 1, 2
_HALF, _LO, _HI = np.float32(0.5), np.float32(0.0), np.float32(255.0)


def _vertical(plane: np.ndarray, taps, x0: int, x1: int) -> np.ndarray:
    """Q8 vertical filter of plane[:, x0:x1] -> int64 [n_out_rows, x1 - x0]."""
    t = taps.weights.shape[1]
    rows = taps.start[:, None] + np.arange(t)
    acc = np.zeros((len(taps.start), x1 - x0), np.int64)
    for k in range(t):
        acc += taps.weights[:, k, None].astype(np.int64) * plane[rows[:, k], x0:x1]
    return acc


def _horizontal(rows: np.ndarray, x0: int, taps, step: int, channel: int) -> np.ndarray:
    """Q8 horizontal filter of sample (start+t)*step+channel (row index minus x0) -> Q16."""
    t = taps.weights.shape[1]
    idx = (taps.start[:, None] + np.arange(t)) * step + channel - x0
    return (rows[:, idx] * taps.weights[None, :, :]).sum(axis=2)


def _finish(chans: list[np.ndarray], plan, out: np.ndarray) -> None:
    """Colour matrix, round, output affine; write into ``out`` (uint8 view of the rows)."""
    m, aff = plan.matrix, plan.affine
    f = [c.astype(np.float32) for c in chans]
    n_out = m.shape[0]
    dtype = (np.uint8, np.float32, np.int8)[plan.kind]
    res = out.view(dtype).reshape(f[0].shape[0], f[0].shape[1], n_out)
    for c in range(n_out):
        half = m[c, 3] + _HALF
        t = m[c, 0] * f[0] + m[c, 1] * f[1] + m[c, 2] * f[2] + half
        level = np.trunc(np.clip(t, _LO, _HI))
        if plan.kind == KIND_U8:
            res[:, :, c] = level
        elif plan.kind == KIND_F32:
            res[:, :, c] = level * aff[c, 0] + aff[c, 1]
        else:
            q = np.clip(level * aff[c, 0] + aff[c, 1], np.float32(-128), np.float32(127))
            res[:, :, c] = np.floor(q + np.float32(128.5)) - np.float32(128)


def _span(taps, step: int, channels: int) -> tuple[int, int]:
    """Source sample range [x0, x1) the horizontal taps read."""
    t = taps.weights.shape[1]
    return int(taps.start.min()) * step, (int(taps.start.max()) + t - 1) * step + channels


def run_yuv(y, u, v, cstep: int, plan, out) -> None:
    """Preprocess Y/U/V planes (chroma sample j at column j*cstep) into ``out`` rows."""
    y = np.asarray(y)
    x0, x1 = _span(plan.luma_x, 1, 1)
    luma = _horizontal(_vertical(y, plan.luma_y, x0, x1), x0, plan.luma_x, 1, 0)
    chans = [luma]
    for plane in (np.asarray(u), np.asarray(v)):
        c0, c1 = _span(plan.chroma_x, cstep, 1)
        rows = _vertical(plane, plan.chroma_y, c0, c1)
        chans.append(_horizontal(rows, c0, plan.chroma_x, cstep, 0))
    _finish(chans, plan, np.asarray(out))


def run_rgb(rgb, plan, out) -> None:
    """Preprocess a (H, W*3) RGB/BGR row view into ``out`` rows."""
    rgb = np.asarray(rgb)
    x0, x1 = _span(plan.luma_x, 3, 3)
    rows = _vertical(rgb, plan.luma_y, x0, x1)
    chans = [_horizontal(rows, x0, plan.luma_x, 3, c) for c in range(3)]
    _finish(chans, plan, np.asarray(out))
