"""Pure numpy twin of the preprocessing kernel (same names, same integer pipeline).

Both backends, per output row: each needed source row filtered horizontally with Q8 weights
(u8 -> Q8 values, exact), then vertically as sum_t (value_t * w_t) >> 16 with Q15 weights
(Q7 result), then the int16 colour matrix on those Q7 values:
t = sum_k (x_k * m_k) >> 16 + m_3 (Q4), level = clamp(t >> 4, 0, 255), and for float32/int8
outputs the float32 affine a * level + b (int8: round half up, saturate).  Integer steps are
identical in both backends; the float affine can differ by one ulp where the C compiler fuses
a multiply-add (FMA), which may move an int8 value by one.
"""
from __future__ import annotations

import numpy as np

BACKEND = "python"
KIND_U8, KIND_F32, KIND_I8 = 0, 1, 2


def _horizontal(plane: np.ndarray, rows: np.ndarray, taps, step: int) -> np.ndarray:
    """Q8 horizontal filter of plane rows ``rows`` (sample j at column j*step) -> int64."""
    t = taps.weights.shape[1]
    idx = (taps.start[:, None] + np.arange(t)) * step
    data = plane[rows][:, idx].astype(np.int64)          # [rows, n_out, t]
    return (data * taps.weights[None].astype(np.int64)).sum(axis=2)


def _filter(plane: np.ndarray, tx, ty, step: int) -> np.ndarray:
    """Horizontal (Q8) then vertical (Q15 weights, >> 16) filter -> Q7 int64 [rows, cols]."""
    t = ty.weights.shape[1]
    first = int(ty.start.min())
    rows = np.arange(first, int(ty.start.max()) + t)
    h = _horizontal(plane, rows, tx, step)
    acc = np.zeros((len(ty.start), h.shape[1]), np.int64)
    for k in range(t):
        w = ty.weights[:, k, None].astype(np.int64)
        acc += (h[ty.start - first + k] * w) >> 16
    return acc


def _finish(chans: list[np.ndarray], plan, out: np.ndarray) -> None:
    """Colour matrix, levels, output affine; write into ``out`` (uint8 view of the rows)."""
    m = plan.matrix.astype(np.int64)
    aff = plan.affine
    x = chans                                              # Q7
    n_out = m.shape[0]
    dtype = (np.uint8, np.float32, np.int8)[plan.kind]
    res = out.view(dtype).reshape(x[0].shape[0], x[0].shape[1], n_out)
    for c in range(n_out):
        t = ((x[0] * m[c, 0]) >> 16) + ((x[1] * m[c, 1]) >> 16) + ((x[2] * m[c, 2]) >> 16)
        level = np.clip((t + m[c, 3]) >> 4, 0, 255)
        if plan.kind == KIND_U8:
            res[:, :, c] = level
            continue
        val = level.astype(np.float32) * aff[c, 0] + aff[c, 1]
        if plan.kind == KIND_F32:
            res[:, :, c] = val
        else:
            q = np.clip(val, np.float32(-128), np.float32(127))
            res[:, :, c] = np.floor(q + np.float32(128.5)) - np.float32(128)


def run_yuv(y, u, v, cstep: int, plan, out) -> None:
    """Preprocess Y/U/V planes (chroma sample j at column j*cstep) into ``out`` rows."""
    chans = [_filter(np.asarray(y), plan.luma_x, plan.luma_y, 1)]
    for plane in (np.asarray(u), np.asarray(v)):
        chans.append(_filter(plane, plan.chroma_x, plan.chroma_y, cstep))
    _finish(chans, plan, np.asarray(out))


def run_rgb(rgb, plan, out) -> None:
    """Preprocess a (H, W*3) RGB/BGR row view into ``out`` rows."""
    rgb = np.asarray(rgb)
    chans = [_filter(rgb[:, c:], plan.luma_x, plan.luma_y, 3) for c in range(3)]
    _finish(chans, plan, np.asarray(out))
