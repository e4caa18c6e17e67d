"""Pure numpy/Python twin of ``_locate_cy`` (same names, same results; ``warp_affine`` within
1 grey level because of floating-point contraction)."""
from __future__ import annotations

from collections import deque

import numpy as np

BACKEND = "python"


def cell_stats(gray: np.ndarray, cell: int, step: int) -> np.ndarray:
    """Per-cell int64 sums of gx*gx, gy*gy, gx*gy at pixels whose x and y satisfy
    (v % cell) % step == 0; shape (3, H // cell, W // cell)."""
    h, w = gray.shape
    ch, cw = h // cell, w // cell
    out = np.zeros((3, ch, cw), dtype=np.int64)
    if ch == 0 or cw == 0 or h < 3 or w < 3:
        return out
    g = gray.astype(np.int64)
    gx = np.zeros((h, w), np.int64)
    gy = np.zeros((h, w), np.int64)
    gx[1:-1, 1:-1] = g[1:-1, 2:] - g[1:-1, :-2]
    gy[1:-1, 1:-1] = g[2:, 1:-1] - g[:-2, 1:-1]
    skip = (np.arange(h) % cell) % step != 0
    gx[skip] = 0
    gy[skip] = 0
    skip = (np.arange(w) % cell) % step != 0
    gx[:, skip] = 0
    gy[:, skip] = 0
    for k, prod in enumerate((gx * gx, gy * gy, gx * gy)):
        block = prod[:ch * cell, :cw * cell].reshape(ch, cell, cw, cell)
        out[k] = block.sum(axis=(1, 3))
    return out


def _close(a: int, b: int, nbins: int, max_diff: int) -> bool:
    d = abs(a - b)
    return min(d, nbins - d) <= max_diff


def label_cells(mask: np.ndarray, bins: np.ndarray, nbins: int, max_diff: int):
    """8-connected labels (int32, 0 = background, 1..n in raster order of first cell) and n."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    count = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x]:
            continue
        count += 1
        labels[y, x] = count
        queue = deque([(y, x)])
        while queue:
            cy, cx = queue.popleft()
            for ny in (cy - 1, cy, cy + 1):
                for nx in (cx - 1, cx, cx + 1):
                    if (0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]
                            and _close(int(bins[cy, cx]), int(bins[ny, nx]), nbins, max_diff)):
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels, count


def warp_affine(src: np.ndarray, m: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resampling at (m0*j + m1*i + m2, m3*j + m4*i + m5), clamped; uint8."""
    h, w = src.shape
    jj, ii = np.meshgrid(np.arange(out_w, dtype=np.float64), np.arange(out_h, dtype=np.float64))
    sx = np.clip(m[0] * jj + m[1] * ii + m[2], 0, w - 1)
    sy = np.clip(m[3] * jj + m[4] * ii + m[5], 0, h - 1)
    ix = sx.astype(np.intp)
    iy = sy.astype(np.intp)
    fx, fy = sx - ix, sy - iy
    ix1 = np.minimum(ix + 1, w - 1)
    iy1 = np.minimum(iy + 1, h - 1)
    s = src.astype(np.float64)
    top = s[iy, ix] + (s[iy, ix1] - s[iy, ix]) * fx
    bot = s[iy1, ix] + (s[iy1, ix1] - s[iy1, ix]) * fx
    return (top + (bot - top) * fy + 0.5).astype(np.uint8)


def line_edges(gray: np.ndarray, line: tuple, n: int, window: int) -> np.ndarray:
    """Indices of the edges met along a sampled line ``(x0, y0, dx, dy)`` (16.16 fixed
    point); see the Cython doc."""
    x0, y0, dx, dy = (int(v) for v in line)
    h, w = gray.shape
    half = window // 2
    if n < window + 1 or window < 3:
        return np.zeros(0, dtype=np.int64)
    i = np.arange(n, dtype=np.int64)
    ix = np.clip((x0 + i * dx + 32768) >> 16, 0, w - 1)
    iy = np.clip((y0 + i * dy + 32768) >> 16, 0, h - 1)
    p = gray[iy, ix].astype(np.int64)
    csum = np.concatenate(([0], np.cumsum(p)))
    centre = np.arange(half, n - half)
    run = csum[centre + half + 1] - csum[centre - half]
    d = window * p[centre] - run
    m = n - 2 * half
    absum = int(np.abs(d).sum())
    if absum < 2 * m * window:
        return np.zeros(0, dtype=np.int64)
    s = np.where(2 * m * d > absum, 1, np.where(2 * m * d < -absum, -1, 0))
    nz = np.nonzero(s)[0]
    sv = s[nz]
    change = np.nonzero(sv[1:] != sv[:-1])[0] + 1
    return (centre[nz[change]]).astype(np.int64)


def edge_run(gray: np.ndarray, line: tuple, n: int, window: int, core_lo: int,
             core_hi: int) -> tuple[int, int, int, int]:
    """(edges in the run, first pos, last pos, 2 x median core spacing); see the Cython doc."""
    pos = line_edges(gray, line, n, window)
    core = np.nonzero((pos >= core_lo) & (pos <= core_hi))[0]
    if core.size < 4:
        return (0, 0, 0, 0)
    first, last = int(core[0]), int(core[-1])
    diffs = np.sort(np.diff(pos[first:last + 1]))
    nd = diffs.size
    m2 = int(2 * diffs[nd // 2]) if nd % 2 else int(diffs[nd // 2 - 1] + diffs[nd // 2])
    gaps2 = 2 * np.diff(pos)
    limit = 6 * m2 + 2
    breaks = np.nonzero(gaps2 >= limit)[0]            # gap i lies between edges i and i + 1
    before = breaks[breaks < first]
    after = breaks[breaks >= last]
    first = int(before[-1]) + 1 if before.size else 0
    last = int(after[0]) if after.size else pos.size - 1
    return (last - first + 1, int(pos[first]), int(pos[last]), m2)
