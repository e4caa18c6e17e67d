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
    min_aspect: float = 0.03       # bar height / code length of a 1-D code, at least: a thin
    #                                slice of a code (a tight crop, a code seen through a gap)
    #                                still counts; rows of text are left to the edge checks
    min_matrix_edges: int = 6      # edges on a centre line of a 2-D candidate, each direction
    min_matrix_fill: float = 0.25  # fraction of a 2-D box's cells that are energetic
    split_square: float = 1.6      # a piece of an over-large texture component: sides within
    split_fill: float = 0.6        # this ratio, energetic cells over this share of its box,
    split_min_cells: int = 9       # and at least this many cells (see _split_texture)
    shear_ratio: float = 3.0       # a 1-D component this elongated (sigma along / across) whose
    shear_min: float = 0.05        # long axis is this far (rad, 3 degrees) from the across-bars
    shear_max: float = 0.6         # direction, and no farther than this (34 degrees), is scanned
    #                                along its long axis (see _follow_shear)
    kind_share: float = 0.4        # each kind's best boxes, this share of the budget (rounded
    #                                down, at least 1: 3 of 8, 1 of 4), come before the rest:
    #                                a small 2-D code is not crowded out by strong striped
    #                                texture, nor a 1-D code by busy print; 0 = plain top-k


class CellField(NamedTuple):
    """Per-cell features: energy (grey^2/px), coherence (0..1), angle (rad), lambda_min, and
    the coherent energy along the doubled angle, energy x coherence x (cos 2a, sin 2a)
    (grey^2/px; summed over a component, its half angle is the mean angle)."""

    energy: np.ndarray
    coherence: np.ndarray
    angle: np.ndarray
    texture: np.ndarray
    c2: np.ndarray
    s2: np.ndarray


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


def _npx(cell: int) -> float:
    """Sampled px per cell."""
    return float(((cell + ROW_STEP - 1) // ROW_STEP) ** 2)


def _cell_energy(gray: np.ndarray, cell: int):
    """Kernel cell sums (3, H/cell, W/cell) and the mean squared gradient per cell."""
    stats, energy, _ = _cell_tensor(gray, cell)
    return stats, energy


def _cell_tensor(gray: np.ndarray, cell: int):
    """Kernel cell sums, energy and isotropic energy per cell (grey^2)."""
    if not 2 <= cell <= 64:
        raise NativeInputError(f"cell must be 2..64 px, got {cell}")
    stats = _k.cell_stats(check_gray(gray), int(cell), ROW_STEP)
    energy, iso = _k.cell_energy(stats, _npx(cell))
    return stats, energy, iso


def _features(stats: np.ndarray, energy: np.ndarray, cell: int, min_energy: float) -> CellField:
    return CellField(energy, *_k.cell_features(stats, energy, _npx(cell), float(min_energy)))


def _percentile(a: np.ndarray, q: float) -> float:
    """``np.percentile(a, q)`` (linear interpolation) by one selection: the next order
    statistic is the smallest value above the selected one (a min scan costs a fifth of
    a second selection)."""
    flat = a.ravel()
    pos = q / 100.0 * (flat.size - 1)
    lo = int(pos)
    part = np.partition(flat, lo)
    nxt = part[lo + 1:].min() if lo + 1 < flat.size else part[lo]
    return float(part[lo] + (pos - lo) * (nxt - part[lo]))


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
    noise = _percentile(energy, 20)
    if isotropic is not None:
        noise = min(noise, _ISO_NOISE_GAIN * _percentile(isotropic, 20))
    return max(p.min_energy, p.noise_factor * min(noise, p.max_noise))


def isotropic_energy(stats: np.ndarray, cell: int) -> np.ndarray:
    """Per cell: 2 x the smaller eigenvalue of the summed gradient tensor per sampled px
    (grey^2); equals the energy for pure noise, near 0 inside a 1-D code."""
    return _k.cell_energy(np.ascontiguousarray(stats, dtype=np.int64), _npx(cell))[1]


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
    stats, energy, iso = _cell_tensor(gray, params.cell)
    params = replace(params, min_energy=energy_threshold(energy, params, iso))
    f = _features(stats, energy, params.cell, params.min_energy)
    if f.energy.size == 0 or max_candidates == 0:
        return []
    cands = []
    if "linear" in kinds:
        cands += _linear_candidates(gray, f, params, max_candidates)
    if "matrix" in kinds:
        cands += _matrix_candidates(gray, f, params)
    cands.sort(key=lambda c: -c.score)
    return share_kinds(_drop_contained(cands), max_candidates, params.kind_share)


def share_kinds(cands: list[Candidate], budget: int, share: float) -> list[Candidate]:
    """The best ``budget`` of ``cands`` (sorted by score, best first): each kind's best
    ``int(share * budget)`` (at least 1; none with ``share`` 0) first, then the rest by
    score.  Scores of the two kinds are not on one scale (a 1-D component sums coherent
    energy, a 2-D one texture), so a plain top-k lets a frame's striped texture take every
    slot from a small, low-contrast 2-D code.  Half the budget each costs scenes with
    several 1-D codes reads at small budgets (4 codes, a budget of 4: 2 slots)."""
    quota = max(1, int(share * budget)) if share > 0 else 0
    seen: dict[str, int] = {}
    first, rest = [], []
    for c in cands:
        seen[c.kind] = seen.get(c.kind, 0) + 1
        (first if seen[c.kind] <= quota else rest).append(c)
    return (first + rest)[:budget]


def _linear_candidates(gray: np.ndarray, f: CellField, p: LocateParams,
                       max_keep: int) -> list[Candidate]:
    """1-D candidates: coherent energetic cells joined by angle, components screened in bulk
    (size, extent across the bars), then boxed, refitted and kept by the kernel
    ``linear_boxes`` (see :func:`refine_linear`), heaviest component first."""
    mask = (f.energy >= p.min_energy) & (f.coherence >= p.linear_coherence)
    bins = (((f.angle + math.pi / 2) / math.pi) * NBINS).astype(np.int32) % NBINS
    labels, n = label_cells(mask, bins, NBINS, p.max_angle_diff)
    table = _component_table(f, labels, n, p)
    boxes = _k.linear_boxes(gray, table, _linear_prm(p), int(max_keep))
    return [Candidate("linear", *map(float, b)) for b in boxes]


def _linear_prm(p: LocateParams) -> np.ndarray:
    """The kernel's parameter vector (cell, quiet zone, min energy, min edges, min aspect)."""
    return np.array([p.cell, p.quiet_zone, p.min_energy, p.min_edges, p.min_aspect],
                    dtype=np.float64)


def _component_table(f: CellField, labels: np.ndarray, n: int, p: LocateParams) -> np.ndarray:
    """Per component with enough cells and extent across the bars, heaviest first: float64
    rows (angle rad, u min, u max, v min, v max px, weight), from the kernel's
    per-component statistics."""
    st = _k.linear_components(labels, int(n), f.energy * f.coherence, f.c2, f.s2,
                              int(p.cell), int(p.min_linear_cells))
    across = (st[:, 3] - st[:, 2]) / p.cell + 1.0
    good = np.nonzero((st[:, 0] >= p.min_linear_cells) & (across >= p.min_across_cells))[0]
    good = good[good > 0]
    good = good[np.argsort(-st[good, 6], kind="stable")]
    return np.ascontiguousarray(_follow_shear(st[good], p))


def _follow_shear(st: np.ndarray, p: LocateParams) -> np.ndarray:
    """Table rows (angle rad, u lo, u hi, v lo, v hi px, weight) of ``linear_components``
    rows.  A code seen in perspective or on a curved pack has its bars fanned out: the mean
    gradient angle is not the code's long axis, and scan lines across the bars at that angle
    leave a long, thin code before its end.  When a component is elongated (sigma along its
    long axis >= ``p.shear_ratio`` x across) and that axis is ``p.shear_min``..``p.shear_max``
    rad from the gradient angle, its row follows the long axis instead: centre at the
    weighted mean of its cells, extent +-sqrt(3) sigma along (a uniform spread of cells) and
    +-2 sigma across (bar ends and stray cells aside).  The kernel ``linear_boxes`` then
    refits the box by its bar edges as for any row."""
    rows = st[:, 1:7].copy()
    lim2 = p.shear_ratio ** 2
    for i, (a, um, vm, uu, uv, vv) in enumerate(st[:, [1, 7, 8, 9, 10, 11]].tolist()):
        disc = math.hypot((uu - vv) / 2.0, uv)
        major, minor = (uu + vv) / 2.0 + disc, (uu + vv) / 2.0 - disc
        if major < lim2 * max(minor, 1e-9):
            continue
        phi = 0.5 * math.atan2(2.0 * uv, uu - vv)      # long axis, from the u axis (rad)
        if not p.shear_min <= abs(phi) <= p.shear_max:
            continue                                # most elongated components: text rows
        x, y = um * math.cos(a) - vm * math.sin(a), um * math.sin(a) + vm * math.cos(a)
        na = (a + phi + math.pi / 2) % math.pi - math.pi / 2
        u, v = x * math.cos(na) + y * math.sin(na), -x * math.sin(na) + y * math.cos(na)
        su, sv = math.sqrt(3.0 * major), 2.0 * math.sqrt(max(minor, 0.0))
        rows[i, :5] = (na, u - su, u + su, v - sv, v + sv)
    return rows


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
    refitted box with a quiet zone of 6 spacings each side, or None.  (The localiser does
    this inside the kernel ``linear_boxes``; this is the same step for one box.)"""
    ux, uy = math.cos(c.angle), math.sin(c.angle)
    u, v = c.cx * ux + c.cy * uy, -c.cx * uy + c.cy * ux
    half_u = ((c.length - 2 * p.cell) / (1.0 + 2.0 * p.quiet_zone) - p.cell) / 2
    half_v = (c.height - 2.0 * p.cell) / 2
    row = np.array([[c.angle, u - half_u, u + half_u, v - half_v, v + half_v,
                     c.score * p.min_energy]], dtype=np.float64)
    boxes = _k.linear_boxes(check_gray(gray), row, _linear_prm(p), 1)
    return Candidate("linear", *map(float, boxes[0])) if len(boxes) else None


def _fix(v: float) -> int:
    """16.16 fixed point."""
    return int(round(v * 65536.0))


def _matrix_candidates(gray: np.ndarray, f: CellField, p: LocateParams) -> list[Candidate]:
    """2-D candidates: texture cells (energetic, not coherent) grouped after one dilation;
    components are screened in bulk (size, shape, summed tensor coherence) before the
    per-box growth, fill and edge checks.  A component too large or too long to be one code
    is searched again for code-sized pieces (:func:`_split_texture`)."""
    energetic = f.energy >= p.min_energy
    active = energetic & (f.coherence < p.linear_coherence)
    labels, n = label_cells(_dilate(active), np.zeros(active.shape, np.int32), 1, 0)
    if n == 0:
        return []
    fields = np.stack([f.energy, f.c2, f.s2, f.texture])
    st = _k.matrix_components(labels, int(n), active.view(np.uint8), fields)
    ok, too_big = _matrix_screen(st, p)
    comps = [_matrix_rows(st, ok)]
    if too_big.any():
        comps.append(_split_texture(energetic & too_big[labels], fields, p))
    prm = np.array([p.cell, p.min_matrix_fill, p.min_matrix_edges, p.min_energy], np.float64)
    boxes = _k.matrix_boxes(gray, energetic.view(np.uint8),
                            np.ascontiguousarray(np.concatenate(comps), dtype=np.float64), prm)
    return [Candidate("matrix", *map(float, b)) for b in boxes]


def _matrix_screen(st: np.ndarray, p: LocateParams) -> tuple[np.ndarray, np.ndarray]:
    """Per component row of ``matrix_components``: (passes the 2-D screen, is too large or
    too long for one code); row 0 (background) is neither."""
    count, coh = st[:, 0], st[:, 1]
    hh, ww = st[:, 3] - st[:, 2], st[:, 5] - st[:, 4]
    side_lo, side_hi = np.minimum(hh, ww), np.maximum(hh, ww)
    shape_ok = (side_hi <= 4 * np.maximum(side_lo, 1)) & (side_hi <= 80)
    enough = count >= p.min_matrix_cells
    ok, too_big = enough & (coh < p.matrix_coherence) & shape_ok, enough & ~shape_ok
    ok[0] = too_big[0] = False
    return ok, too_big


def _matrix_rows(st: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The kernel's component rows (y0, y1, x0, x1 cells, texture sum) of the kept ones."""
    return st[keep][:, [2, 3, 4, 5, 6]]


def _split_texture(cells: np.ndarray, fields: np.ndarray, p: LocateParams) -> np.ndarray:
    """Code-sized pieces of texture components too large to be one code: a small code
    whose quiet zone the dilation bridged to a textured background (cloth, print) is one
    piece of that component's energetic cells, undilated.  Coherent cells count too: a
    cell of a small code sees one or two module edges, and finder and bull's-eye rings are
    locally coherent.  A piece must pass the 2-D screen, be square (codes are; within
    ``p.split_square``), dense (energetic over ``p.split_fill`` of its box) and at least
    ``p.split_min_cells`` cells.  Returns component rows as :func:`_matrix_rows`."""
    labels, n = label_cells(cells, np.zeros(cells.shape, np.int32), 1, 0)
    if n == 0:
        return np.zeros((0, 5))
    st = _k.matrix_components(labels, int(n), cells.view(np.uint8), fields)
    ok, _ = _matrix_screen(st, p)
    count, hh, ww = st[:, 0], st[:, 3] - st[:, 2], st[:, 5] - st[:, 4]
    square = np.maximum(hh, ww) <= p.split_square * np.maximum(np.minimum(hh, ww), 1)
    ok &= square & (count >= p.split_fill * hh * ww) & (count >= p.split_min_cells)
    return _matrix_rows(st, ok)


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:, :] |= mask[:-1, :]
    out[:-1, :] |= mask[1:, :]
    grown = out.copy()
    grown[:, 1:] |= out[:, :-1]
    grown[:, :-1] |= out[:, 1:]
    return grown


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
