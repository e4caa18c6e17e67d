"""Barcode candidate localiser: where in a grey frame are 1-D and 2-D codes likely to be?

Works on a grid of ``cell`` x ``cell`` pixel cells of the Y plane.  Per cell the kernel sums the
gradient structure tensor; from it come the mean squared gradient (edge energy), the coherence
(1 = all edges parallel) and the dominant gradient angle.

* 1-D codes: energetic, coherent cells joined with neighbours of similar angle (any rotation);
  a component must extend across the bars (along the gradient) for several cells, which rejects
  single edges of boxes and shelves.
* 2-D codes (QR, Data Matrix): energetic cells (dilated once so large modules stay one blob)
  whose summed tensor is *not* coherent: edges in both directions, dense square texture.

Returns oriented boxes with a score, best first, at most ``max_candidates``.  The heavy loops
are in ``_locate_cy`` (or its twin ``_locate_py`` with ``STOREEDGE_PURE=1``).

    >>> cands = locate(gray, max_candidates=8)
    >>> cands[0].kind, cands[0].center, cands[0].angle   # "linear", (x px, y px), radians
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from storeedge.native._backend import load_kernel
from storeedge.native.exc import NativeInputError

_k = load_kernel("locate")
BACKEND: str = _k.BACKEND
ROW_STEP = 2                    # the cell statistics use every 2nd row and column
_ISO_NOISE_GAIN = 1.67          # 20th percentiles of energy / isotropic energy on pure noise
NBINS = 36                      # orientation bins over 180 degrees (5 degrees each)


class Candidate(NamedTuple):
    """An oriented box in frame pixels.

    ``angle`` (radians, in [-pi/2, pi/2)) is the direction across the bars for a linear code
    (the gradient direction); ``length`` is the extent along it and ``height`` across it (px),
    quiet-zone margins included.  ``kind`` is "linear" or "matrix"; ``score`` is relative
    (larger = more code-like), only for ranking.
    """

    kind: str
    cx: float
    cy: float
    length: float
    height: float
    angle: float
    score: float

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) in pixels."""
        return (self.cx, self.cy)

    def corners(self) -> list[tuple[float, float]]:
        """Four corners (x, y) px: the upright box's top-left, top-right, bottom-right,
        bottom-left after rotation by ``angle``."""
        ux, uy = math.cos(self.angle), math.sin(self.angle)
        vx, vy = -uy, ux
        hl, hh = self.length / 2, self.height / 2
        return [(self.cx + su * hl * ux + sv * hh * vx, self.cy + su * hl * uy + sv * hh * vy)
                for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


@dataclass(frozen=True)
class LocateParams:
    """Tuning of the localiser.  Energies are mean squared central differences (grey^2)."""

    cell: int = 8                  # px
    min_energy: float = 60.0       # grey^2 per px, floor; ~ mean edge contrast 8 levels
    noise_factor: float = 3.0      # x the 20th-percentile cell energy (noise), when higher
    max_noise: float = 600.0       # grey^2 per px, cap of that noise estimate (sigma ~12): a
    #                                2-D code filling the frame leaves no flat cell to measure
    linear_coherence: float = 0.55
    matrix_coherence: float = 0.5  # a 2-D blob's summed coherence must be below this
    max_angle_diff: int = 2        # bins (10 degrees) between joined linear cells
    min_linear_cells: int = 4
    min_across_cells: float = 4.0  # extent along the gradient, cells
    min_matrix_cells: int = 4
    quiet_zone: float = 0.12       # fraction of a linear code's length added on each side
    min_edges: int = 22            # bar edges a scan line across a linear candidate must meet
    #                                (the shortest retail code, UPC-E, has 17 bars = 34 edges)
    min_aspect: float = 0.1        # bar height / code length of a 1-D code, at least
    min_matrix_edges: int = 6      # edges on a centre line of a 2-D candidate, each direction
    min_matrix_fill: float = 0.25  # fraction of a 2-D box's cells that are energetic


class CellField(NamedTuple):
    """Per-cell features: energy (grey^2/px), coherence (0..1), angle (rad), lambda_min."""

    energy: np.ndarray
    coherence: np.ndarray
    angle: np.ndarray
    texture: np.ndarray


def check_gray(gray) -> np.ndarray:
    """Validate a frame: 2-D uint8, non-empty.  Returns a C-contiguous view or copy.

    Raises :class:`NativeInputError` with the reason otherwise.
    """
    if not isinstance(gray, np.ndarray):
        raise NativeInputError(f"frame must be a numpy array, got {type(gray).__name__}")
    if gray.dtype != np.uint8:
        raise NativeInputError(f"frame must be uint8 grey levels, got dtype {gray.dtype}")
    if gray.ndim != 2:
        raise NativeInputError(f"frame must be 2-D (H, W), got shape {gray.shape}")
    if gray.size == 0:
        raise NativeInputError(f"frame is empty: shape {gray.shape}")
    return np.ascontiguousarray(gray)


def cell_field(gray: np.ndarray, cell: int = 8, min_energy: float = 0.0) -> CellField:
    """Per-cell structure-tensor features of a validated frame (see :class:`CellField`).
    Coherence, angle and texture are computed only where energy >= ``min_energy`` (grey^2/px)
    and are 0 elsewhere (most cells of a frame are flat)."""
    stats, energy = _cell_energy(gray, cell)
    return _features(stats, energy, cell, min_energy)


def _cell_energy(gray: np.ndarray, cell: int):
    """Kernel cell sums (3, H/cell, W/cell) and the mean squared gradient per cell."""
    if not 2 <= cell <= 64:
        raise NativeInputError(f"cell must be 2..64 px, got {cell}")
    stats = _k.cell_stats(check_gray(gray), int(cell), ROW_STEP)
    npx = float(((cell + ROW_STEP - 1) // ROW_STEP) ** 2)
    return stats, (stats[0] + stats[1]) / npx


def _features(stats: np.ndarray, energy: np.ndarray, cell: int, min_energy: float) -> CellField:
    npx = float(((cell + ROW_STEP - 1) // ROW_STEP) ** 2)
    coherence, angle, texture = (np.zeros(energy.shape) for _ in range(3))
    sel = (energy >= min_energy) & (energy > 0)
    sxx, syy, sxy = (s[sel].astype(np.float64) for s in stats)
    trace = sxx + syy
    root = np.sqrt((sxx - syy) ** 2 + 4.0 * sxy ** 2)
    coherence[sel] = root / trace
    angle[sel] = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    texture[sel] = (trace - root) / (2.0 * npx)
    return CellField(energy, coherence, angle, texture)


def energy_threshold(energy: np.ndarray, p: LocateParams,
                     isotropic: np.ndarray | None = None) -> float:
    """Energy (grey^2/px) a cell needs to count: ``p.min_energy``, raised to
    ``p.noise_factor`` x the 20th percentile of the frame's cell energies (at most
    ``p.max_noise``).  Flat cells carry
    only sensor noise (4 sigma^2 for central differences); the low percentile measures it
    even when codes or clutter fill most of the frame.  With ``isotropic`` (per cell, twice
    the smaller tensor eigenvalue per px, grey^2) the lower of the two percentiles is used
    (the isotropic one x 1.67, their ratio on pure sensor noise): noise is isotropic, bars
    are not, so a 1-D code filling the whole frame does not raise the floor above its own
    cells."""
    if energy.size == 0:
        return p.min_energy
    noise = float(np.percentile(energy, 20))
    if isotropic is not None:
        noise = min(noise, _ISO_NOISE_GAIN * float(np.percentile(isotropic, 20)))
    return max(p.min_energy, p.noise_factor * min(noise, p.max_noise))


def isotropic_energy(stats: np.ndarray, cell: int) -> np.ndarray:
    """Per cell: 2 x the smaller eigenvalue of the summed gradient tensor per sampled px
    (grey^2); equals the energy for pure noise, near 0 inside a 1-D code."""
    npx = float(((cell + ROW_STEP - 1) // ROW_STEP) ** 2)
    sxx, syy, sxy = (s.astype(np.float64) for s in stats)
    return (sxx + syy - np.sqrt((sxx - syy) ** 2 + 4.0 * sxy ** 2)) / npx


def label_cells(mask: np.ndarray, bins: np.ndarray, nbins: int, max_diff: int):
    """Connected components (8-neighbours) of ``mask`` whose circular ``bins`` differ by at
    most ``max_diff``.  Returns (int32 labels, count); labels in raster order."""
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    bins = np.ascontiguousarray(bins, dtype=np.int32)
    if mask.shape != bins.shape or mask.ndim != 2:
        raise NativeInputError("mask and bins must be 2-D arrays of the same shape")
    return _k.label_cells(mask, bins, int(nbins), int(max_diff))


def warp_affine(gray: np.ndarray, matrix, out_h: int, out_w: int) -> np.ndarray:
    """Resample ``gray`` (bilinear, border replicated) into an (out_h, out_w) uint8 image:
    output pixel (col j, row i) reads source (x, y) = matrix @ (j, i, 1); matrix is 2x3."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.size != 6 or not np.all(np.isfinite(m)):
        raise NativeInputError(f"warp matrix must be 2x3 finite numbers, got {m.size} values")
    m = np.ascontiguousarray(m.reshape(6))
    if not (1 <= out_h <= 8192 and 1 <= out_w <= 8192):
        raise NativeInputError(f"warp output size out of range: {out_h}x{out_w}")
    return _k.warp_affine(check_gray(gray), m, int(out_h), int(out_w))


def locate(gray: np.ndarray, max_candidates: int = 8,
           params: LocateParams = LocateParams(),
           kinds: tuple[str, ...] = ("linear", "matrix")) -> list[Candidate]:
    """Candidate code regions in ``gray`` (2-D uint8), best first, at most ``max_candidates``;
    ``kinds`` limits the search to 1-D ("linear") and/or 2-D ("matrix") codes."""
    if not isinstance(max_candidates, int) or max_candidates < 0:
        raise NativeInputError(f"max_candidates must be an int >= 0, got {max_candidates!r}")
    if not set(kinds) <= {"linear", "matrix"}:
        raise NativeInputError(f"kinds must be 'linear' and/or 'matrix', got {kinds!r}")
    gray = check_gray(gray)
    stats, energy = _cell_energy(gray, params.cell)
    params = replace(params, min_energy=energy_threshold(energy, params,
                                                         isotropic_energy(stats, params.cell)))
    f = _features(stats, energy, params.cell, params.min_energy)
    if f.energy.size == 0 or max_candidates == 0:
        return []
    cands = []
    if "linear" in kinds:
        cands += _linear_candidates(gray, f, params, max_candidates)
    if "matrix" in kinds:
        cands += _matrix_candidates(gray, f, params)
    cands.sort(key=lambda c: -c.score)
    return _drop_contained(cands)[:max_candidates]


def _linear_candidates(gray: np.ndarray, f: CellField, p: LocateParams,
                       max_keep: int) -> list[Candidate]:
    mask = (f.energy >= p.min_energy) & (f.coherence >= p.linear_coherence)
    bins = (((f.angle + math.pi / 2) / math.pi) * NBINS).astype(np.int32) % NBINS
    labels, n = label_cells(mask, bins, NBINS, p.max_angle_diff)
    comps = sorted(_component_table(f, labels, n, p), key=lambda r: -r[-1])
    out = []
    for lab, angle, umin, umax, vmin, vmax, wsum in comps:
        box = _linear_box(angle, (umin, umax, vmin, vmax), wsum, p)
        if any(_inside(box.center, k) for k in out):
            continue                                  # a piece of a code already found
        c = refine_linear(gray, box, p)
        if c is not None and not any(_inside(c.center, k) for k in out):
            out.append(c)
            if len(out) >= max_keep:
                break
    return out


def _component_table(f: CellField, labels: np.ndarray, n: int, p: LocateParams):
    """Per component with enough cells: (label, angle, u/v extents px, weight), vectorised."""
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=n + 1)
    good = np.nonzero(counts >= p.min_linear_cells)[0]
    good = good[good > 0]
    if good.size == 0:
        return []
    sel = np.isin(flat, good)
    idx = np.nonzero(sel)[0]
    lab = flat[idx]
    wts = (f.energy * f.coherence).ravel()[idx]
    a2 = 2.0 * f.angle.ravel()[idx]
    sums_s = np.bincount(lab, wts * np.sin(a2), minlength=n + 1)
    sums_c = np.bincount(lab, wts * np.cos(a2), minlength=n + 1)
    ang = 0.5 * np.arctan2(sums_s, sums_c)
    w = labels.shape[1]
    px, py = (idx % w + 0.5) * p.cell, (idx // w + 0.5) * p.cell
    ca, sa = np.cos(ang[lab]), np.sin(ang[lab])
    u, v = px * ca + py * sa, -px * sa + py * ca
    ext = []
    for arr in (u, v):
        hi = np.full(n + 1, -np.inf)
        lo = np.full(n + 1, np.inf)
        np.maximum.at(hi, lab, arr)
        np.minimum.at(lo, lab, arr)
        ext.append((lo, hi))
    wsum = np.bincount(lab, wts, minlength=n + 1)
    vmean = np.bincount(lab, wts * v, minlength=n + 1) / np.maximum(wsum, 1e-9)
    vvar = np.bincount(lab, wts * v * v, minlength=n + 1) / np.maximum(wsum, 1e-9) - vmean ** 2
    vhalf = np.sqrt(np.maximum(vvar, 0.0)) * 2.0       # +-2 sigma of the weighted bar mass
    (ulo, uhi), (vlo, vhi) = ext
    vlo, vhi = np.maximum(vlo, vmean - vhalf), np.minimum(vhi, vmean + vhalf)
    across = (uhi - ulo) / p.cell + 1.0
    return [(int(k), float(ang[k]), ulo[k], uhi[k], vlo[k], vhi[k], float(wsum[k]))
            for k in good if across[k] >= p.min_across_cells]


def _linear_box(angle: float, extents, weight: float, p: LocateParams) -> Candidate:
    umin, umax, vmin, vmax = extents
    ux, uy = math.cos(angle), math.sin(angle)
    length = (umax - umin + p.cell) * (1.0 + 2.0 * p.quiet_zone) + 2 * p.cell
    height = vmax - vmin + 2.0 * p.cell
    uc, vc = (umax + umin) / 2, (vmax + vmin) / 2
    cx, cy = uc * ux - vc * uy, uc * uy + vc * ux
    return Candidate("linear", float(cx), float(cy), float(length), float(height), angle,
                     weight / p.min_energy)


def edge_crossings(gray: np.ndarray, c: Candidate, lines: int = 3, window: int = 15) -> int:
    """Most bar edges met by a scan line across the bars of ``c`` (``lines`` lines spread
    over its height).  A real 1-D code has >= ~20; a box edge or a few stripes far fewer."""
    return max(len(e) for e in _scan(gray, c, 0.0, lines, window))


def _scan(gray: np.ndarray, c: Candidate, extend: float, lines: int, window: int):
    """Edge positions (px from the line start) on ``lines`` lines across ``c``, each line
    ``extend`` px longer than the box at both ends."""
    ux, uy = math.cos(c.angle), math.sin(c.angle)
    n = max(int(c.length + 2 * extend), 2)
    out = []
    for k in range(lines):
        off = ((k + 1) / (lines + 1) - 0.5) * c.height
        x0 = c.cx - n / 2.0 * ux - off * uy
        y0 = c.cy - n / 2.0 * uy + off * ux
        out.append(_k.line_edges(gray, (_fix(x0), _fix(y0), _fix(ux), _fix(uy)), n, window))
    return out


def refine_linear(gray: np.ndarray, c: Candidate, p: LocateParams) -> Candidate | None:
    """Check a 1-D candidate has enough bar edges across it and fit its length to where the
    edges run (wide elements and quiet zones leave low-energy cells, so one code can be
    several pieces): on 3 lines across the bars, the run of edges through the box is followed
    outwards while gaps stay below 6x the median edge spacing (kernel ``edge_run``).  Needs
    ``p.min_edges`` edges and bars at least ``p.min_aspect`` of the length tall.  Returns the
    refitted box with a quiet zone of 6 spacings each side, or None."""
    extend = max(c.length, 48.0 * p.cell)
    ux, uy = math.cos(c.angle), math.sin(c.angle)
    n = int(c.length + 2 * extend)
    core_lo, core_hi = int(extend), int(extend + c.length)
    best = (0, 0, 0, 0)
    for frac in (0.0, -0.25, 0.25):                   # the middle line first
        x0 = c.cx - n / 2.0 * ux - frac * c.height * uy
        y0 = c.cy - n / 2.0 * uy + frac * c.height * ux
        run = _k.edge_run(gray, (_fix(x0), _fix(y0), _fix(ux), _fix(uy)), n, 15, core_lo,
                          core_hi)
        if run[0] >= p.min_edges and run[2] - run[1] > best[2] - best[1]:
            best = run
        if best[0] >= 2 * p.min_edges:                # clearly a code: no need for more
            break
    count, lo, hi, m2 = best
    if count == 0 or c.height - p.cell < p.min_aspect * (hi - lo):
        return None                                   # too few edges, or a row of text
    mid = (lo + hi) / 2.0 - n / 2.0
    length = hi - lo + 2.0 * (3.0 * m2 + 2.0)
    return c._replace(cx=c.cx + mid * ux, cy=c.cy + mid * uy, length=float(length))


def _fix(v: float) -> int:
    """16.16 fixed point."""
    return int(round(v * 65536.0))


def _matrix_candidates(gray: np.ndarray, f: CellField, p: LocateParams) -> list[Candidate]:
    """2-D candidates: texture cells (energetic, not coherent) grouped after one dilation;
    components are screened in bulk (size, shape, summed tensor coherence) before the
    per-box growth, fill and edge checks."""
    active = (f.energy >= p.min_energy) & (f.coherence < p.linear_coherence)
    labels, n = label_cells(_dilate(active), np.zeros(active.shape, np.int32), 1, 0)
    if n == 0:
        return []
    idx = np.nonzero(active.ravel())[0]
    lab = labels.ravel()[idx]
    w = labels.shape[1]
    ys, xs = idx // w, idx % w
    count = np.bincount(lab, minlength=n + 1)
    e = f.energy.ravel()[idx]
    ec = e * f.coherence.ravel()[idx]
    a2 = 2.0 * f.angle.ravel()[idx]
    coh = np.hypot(np.bincount(lab, ec * np.sin(a2), n + 1),
                   np.bincount(lab, ec * np.cos(a2), n + 1)) / np.maximum(
                       np.bincount(lab, e, n + 1), 1e-9)
    bounds = []
    for arr in (ys, xs):
        lo, hi = np.full(n + 1, 1 << 30), np.full(n + 1, -1)
        np.minimum.at(lo, lab, arr)
        np.maximum.at(hi, lab, arr)
        bounds.append((lo, hi + 1))
    (y0, y1), (x0, x1) = bounds
    texture = np.bincount(lab, f.texture.ravel()[idx], n + 1)
    side_lo, side_hi = np.minimum(y1 - y0, x1 - x0), np.maximum(y1 - y0, x1 - x0)
    ok = ((count >= p.min_matrix_cells) & (coh < p.matrix_coherence)
          & (side_hi <= 4 * np.maximum(side_lo, 1)) & (side_hi <= 80))
    ok[0] = False
    out = []
    for k in np.nonzero(ok)[0]:
        c = _matrix_box(f, (int(y0[k]), int(y1[k]), int(x0[k]), int(x1[k])),
                        float(texture[k]), p)
        if c is not None and _matrix_edges_ok(gray, c, p):
            out.append(c)
    return out


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


def _matrix_box(f: CellField, box: tuple[int, int, int, int], texture: float,
                p: LocateParams) -> Candidate | None:
    """Grow a texture component's cell box (y0, y1, x0, x1) over adjacent energetic cells,
    check shape and fill, and return it as a candidate with a 2-cell margin."""
    y0, y1, x0, x1 = _grow_box(f.energy >= p.min_energy, *box, 6)
    h, w = (y1 - y0) * p.cell, (x1 - x0) * p.cell
    if max(h, w) > 3 * min(h, w) or max(h, w) > 80 * p.cell:
        return None
    cells = f.energy[y0:y1, x0:x1]
    fill = float(np.count_nonzero(cells >= p.min_energy)) / cells.size
    if fill < p.min_matrix_fill:
        return None
    margin = 2 * p.cell
    return Candidate("matrix", float(x0 + x1) * p.cell / 2, float(y0 + y1) * p.cell / 2,
                     float(w + 2 * margin), float(h + 2 * margin), 0.0,
                     texture / p.min_energy * fill)


def _grow_box(active: np.ndarray, y0: int, y1: int, x0: int, x1: int, steps: int):
    """Grow a cell box side by side while the next row/column of cells has active cells
    (the finder patterns and corners of a rotated 2-D code are edges, not texture)."""
    h, w = active.shape
    for _ in range(steps):
        grown = False
        if y0 > 0 and active[y0 - 1, x0:x1].any():
            y0, grown = y0 - 1, True
        if y1 < h and active[y1, x0:x1].any():
            y1, grown = y1 + 1, True
        if x0 > 0 and active[y0:y1, x0 - 1].any():
            x0, grown = x0 - 1, True
        if x1 < w and active[y0:y1, x1].any():
            x1, grown = x1 + 1, True
        if not grown:
            break
    return int(y0), int(y1), int(x0), int(x1)


def _matrix_edges_ok(gray: np.ndarray, c: Candidate, p: LocateParams) -> bool:
    """A 2-D code has module edges in every direction through its middle: lines at 0, 45,
    90 and 135 degrees must each cross ``min_matrix_edges``.  Text has few edges across its
    lines, the ends of a 1-D code's bars few along the bars, a box edge few anywhere."""
    across, down = c.length - 4 * p.cell, c.height - 4 * p.cell       # the box without margin
    for k, size in enumerate((across, min(across, down), down, min(across, down))):
        size = max(size, 2.0)
        line = Candidate("matrix", c.cx, c.cy, size, size * 0.5, k * math.pi / 4, 0.0)
        if edge_crossings(gray, line, window=9) < p.min_matrix_edges:
            return False
    return True


def _drop_contained(cands: list[Candidate]) -> list[Candidate]:
    """Drop a candidate whose centre lies inside a better one of the same kind."""
    kept: list[Candidate] = []
    for c in cands:
        if not any(k.kind == c.kind and _inside(c.center, k) for k in kept):
            kept.append(c)
    return kept


def _inside(pt: tuple[float, float], box: Candidate) -> bool:
    dx, dy = pt[0] - box.cx, pt[1] - box.cy
    u = dx * math.cos(box.angle) + dy * math.sin(box.angle)
    v = -dx * math.sin(box.angle) + dy * math.cos(box.angle)
    return abs(u) <= box.length / 2 and abs(v) <= box.height / 2
