"""Pure numpy/Python twin of ``_locate_cy`` (same names, same results; ``warp_affine`` within
1 grey level because of floating-point contraction)."""
from __future__ import annotations

import math
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


def cell_energy(stats: np.ndarray, npx: float):
    """(energy, isotropic) per cell, grey^2 float64; see the Cython doc."""
    sxx, syy, sxy = (s.astype(np.float64) for s in stats)
    root = np.sqrt((sxx - syy) * (sxx - syy) + 4.0 * (sxy * sxy))
    return (stats[0] + stats[1]) / npx, (sxx + syy - root) / npx


def cell_features(stats: np.ndarray, energy: np.ndarray, npx: float, min_energy: float):
    """(coherence, angle rad, texture grey^2, c2, s2 grey^2) of the cells with energy >=
    min_energy, > 0; (c2, s2) = energy x coherence x (cos 2a, sin 2a)."""
    coherence, angle, texture, c2, s2 = (np.zeros(energy.shape) for _ in range(5))
    sel = (energy >= min_energy) & (energy > 0)
    sxx, syy, sxy = (s[sel].astype(np.float64) for s in stats)
    trace = sxx + syy
    root = np.sqrt((sxx - syy) * (sxx - syy) + 4.0 * (sxy * sxy))
    coherence[sel] = root / trace
    angle[sel] = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    texture[sel] = (trace - root) / (2.0 * npx)
    c2[sel] = (sxx - syy) / npx
    s2[sel] = 2.0 * sxy / npx
    return coherence, angle, texture, c2, s2


def _extent(lab: np.ndarray, arr: np.ndarray, n: int):
    lo, hi = np.full(n + 1, np.inf), np.full(n + 1, -np.inf)
    np.minimum.at(lo, lab, arr)
    np.maximum.at(hi, lab, arr)
    return lo, hi


def linear_components(labels: np.ndarray, n: int, weight: np.ndarray, c2: np.ndarray,
                      s2: np.ndarray, cell: int, min_cells: int) -> np.ndarray:
    """Per label 0..n: count, mean angle, u lo/hi, v lo/hi (px), weight sum, mean u, mean v,
    var u, cov uv, var v (px, px^2; mean angle, extents and moments only for labels of >=
    ``min_cells`` cells); see the Cython doc."""
    flat = labels.ravel()
    out = np.zeros((n + 1, 12))
    out[:, 0] = np.bincount(flat, minlength=n + 1)
    fg = np.nonzero(flat)[0]
    lab = flat[fg]
    wts = weight.ravel()[fg]
    out[:, 6] = np.bincount(lab, wts, minlength=n + 1)
    out[:, 2:6] = [[np.inf, -np.inf, np.inf, -np.inf]]
    keep = out[lab, 0] >= min_cells
    idx, lab, wts = fg[keep], lab[keep], wts[keep]
    out[:, 1] = 0.5 * np.arctan2(np.bincount(lab, s2.ravel()[idx], minlength=n + 1),
                                 np.bincount(lab, c2.ravel()[idx], minlength=n + 1))
    w = labels.shape[1]
    px, py = (idx % w + 0.5) * cell, (idx // w + 0.5) * cell
    ca, sa = np.cos(out[lab, 1]), np.sin(out[lab, 1])
    u, v = px * ca + py * sa, -px * sa + py * ca
    if lab.size:
        out[:, 2], out[:, 3] = _extent(lab, u, n)
        out[:, 4], out[:, 5] = _extent(lab, v, n)
    ws = np.maximum(out[:, 6], 1e-9)
    wsum = lambda a: np.bincount(lab, wts * a, minlength=n + 1) / ws     # noqa: E731
    umean, vmean = wsum(u), wsum(v)
    vvar = wsum(v * v) - vmean * vmean
    vhalf = np.sqrt(np.maximum(vvar, 0.0)) * 2.0
    big = np.nonzero(out[:, 0] >= min_cells)[0]
    big = big[big > 0]
    out[big, 4] = np.maximum(out[big, 4], (vmean - vhalf)[big])
    out[big, 5] = np.minimum(out[big, 5], (vmean + vhalf)[big])
    moments = np.stack([umean, vmean, wsum(u * u) - umean * umean, wsum(u * v) - umean * vmean,
                        vvar], axis=1)
    out[big, 7:12] = moments[big]
    return out


def matrix_components(labels: np.ndarray, n: int, active: np.ndarray,
                      fields: np.ndarray) -> np.ndarray:
    """Per label 0..n over active cells: count, summed-tensor coherence, box y0, y1, x0, x1,
    texture sum; ``fields`` = (energy, c2, s2, texture); see the Cython doc."""
    energy, c2, s2, texture = fields
    idx = np.nonzero(active.ravel())[0]
    lab = labels.ravel()[idx]
    w = labels.shape[1]
    out = np.zeros((n + 1, 7))
    out[:, 0] = np.bincount(lab, minlength=n + 1)
    out[:, 1] = np.sqrt(np.bincount(lab, s2.ravel()[idx], n + 1) ** 2
                        + np.bincount(lab, c2.ravel()[idx], n + 1) ** 2) / np.maximum(
                            np.bincount(lab, energy.ravel()[idx], n + 1), 1e-9)
    for col, arr in ((2, idx // w), (4, idx % w)):
        lo, hi = np.full(n + 1, float(1 << 30)), np.zeros(n + 1)
        np.minimum.at(lo, lab, arr)
        np.maximum.at(hi, lab, arr + 1)
        out[:, col], out[:, col + 1] = lo, hi
    out[:, 6] = np.bincount(lab, texture.ravel()[idx], n + 1)
    return out


def _inside(px: float, py: float, box) -> bool:
    dx, dy = px - box[0], py - box[1]
    ca, sa = math.cos(box[4]), math.sin(box[4])
    return abs(dx * ca + dy * sa) <= box[2] / 2 and abs(-dx * sa + dy * ca) <= box[3] / 2


def _refine(gray: np.ndarray, box: list, prm) -> bool:
    """Refit a 1-D box [cx, cy, length, height, angle, score] in place; see the Cython doc."""
    cell = prm[0]
    ux, uy = math.cos(box[4]), math.sin(box[4])
    extend = max(box[2], 48.0 * cell)
    n = int(box[2] + 2 * extend)
    core_lo, core_hi = int(extend), int(extend + box[2])
    best = (0, 0, 0, 0)
    for frac in (0.0, -0.25, 0.25):                   # the middle line first
        x0 = box[0] - n / 2.0 * ux - frac * box[3] * uy
        y0 = box[1] - n / 2.0 * uy + frac * box[3] * ux
        line = tuple(int(round(v * 65536.0)) for v in (x0, y0, ux, uy))
        run = edge_run(gray, line, n, 15, core_lo, core_hi)
        if run[0] >= prm[3] and run[2] - run[1] > best[2] - best[1]:
            best = run
        if best[0] >= 2 * prm[3]:                     # clearly a code: no need for more
            break
    count, lo, hi, m2 = best
    if count == 0 or box[3] - cell < prm[4] * (hi - lo):
        return False
    mid = (lo + hi) / 2.0 - n / 2.0
    box[0], box[1] = box[0] + mid * ux, box[1] + mid * uy
    box[2] = float(hi - lo + 2.0 * (3.0 * m2 + 2.0))
    return True


def linear_boxes(gray: np.ndarray, comps: np.ndarray, prm: np.ndarray,
                 max_keep: int) -> np.ndarray:
    """Kept 1-D boxes (k, 6): cx, cy, length, height, angle, score; see the Cython doc."""
    cell, qz = prm[0], prm[1]
    kept: list[list[float]] = []
    for angle, umin, umax, vmin, vmax, weight in comps:
        if len(kept) >= max_keep:
            break
        ux, uy = math.cos(angle), math.sin(angle)
        uc, vc = (umax + umin) / 2, (vmax + vmin) / 2
        box = [uc * ux - vc * uy, uc * uy + vc * ux,
               (umax - umin + cell) * (1.0 + 2.0 * qz) + 2 * cell, vmax - vmin + 2.0 * cell,
               angle, weight / prm[2]]
        if any(_inside(box[0], box[1], k) for k in kept):
            continue                                  # a piece of a code already found
        if _refine(gray, box, prm) and not any(_inside(box[0], box[1], k) for k in kept):
            kept.append(box)
    return np.array(kept, dtype=np.float64).reshape(len(kept), 6)


def _grow(a: np.ndarray, b: list, steps: int) -> None:
    """Grow the cell box b = [y0, y1, x0, x1] in place; see the Cython doc."""
    h, w = a.shape
    for _ in range(steps):
        grown = False
        if b[0] > 0 and a[b[0] - 1, b[2]:b[3]].any():
            b[0], grown = b[0] - 1, True
        if b[1] < h and a[b[1], b[2]:b[3]].any():
            b[1], grown = b[1] + 1, True
        if b[2] > 0 and a[b[0]:b[1], b[2] - 1].any():
            b[2], grown = b[2] - 1, True
        if b[3] < w and a[b[0]:b[1], b[3]].any():
            b[3], grown = b[3] + 1, True
        if not grown:
            break


def _crossings(gray: np.ndarray, cx: float, cy: float, length: float, height: float,
               angle: float) -> int:
    ux, uy = math.cos(angle), math.sin(angle)
    n = max(int(length), 2)
    best = 0
    for k in range(3):
        off = ((k + 1) / 4.0 - 0.5) * height
        x0 = cx - n / 2.0 * ux - off * uy
        y0 = cy - n / 2.0 * uy + off * ux
        line = tuple(int(round(v * 65536.0)) for v in (x0, y0, ux, uy))
        best = max(best, len(line_edges(gray, line, n, 9)))
    return best


def _matrix_edges(gray: np.ndarray, c: list, cell: float, min_edges: float) -> bool:
    across, down = c[2] - 4 * cell, c[3] - 4 * cell
    for k, size in enumerate((across, min(across, down), down, min(across, down))):
        size = max(size, 2.0)
        if _crossings(gray, c[0], c[1], size, size * 0.5, k * math.pi / 4) < min_edges:
            return False
    return True


def matrix_boxes(gray: np.ndarray, energetic: np.ndarray, comps: np.ndarray,
                 prm: np.ndarray) -> np.ndarray:
    """Kept 2-D boxes (k, 6): cx, cy, length, height, 0, score; see the Cython doc."""
    cell = prm[0]
    kept = []
    for y0, y1, x0, x1, texture in comps:
        b = [int(y0), int(y1), int(x0), int(x1)]
        _grow(energetic, b, 6)
        hh, ww = (b[1] - b[0]) * cell, (b[3] - b[2]) * cell
        if hh <= 0 or ww <= 0:
            continue
        if max(hh, ww) > 3 * min(hh, ww) or max(hh, ww) > 80 * cell:
            continue
        fill = np.count_nonzero(energetic[b[0]:b[1], b[2]:b[3]]) / ((b[1] - b[0]) * (b[3] - b[2]))
        if fill < prm[1]:
            continue
        c = [float(b[2] + b[3]) * cell / 2, float(b[0] + b[1]) * cell / 2, ww + 2 * (2 * cell),
             hh + 2 * (2 * cell), 0.0, texture / prm[3] * fill]
        if _matrix_edges(gray, c, cell, prm[2]):
            kept.append(c)
    return np.array(kept, dtype=np.float64).reshape(len(kept), 6)
