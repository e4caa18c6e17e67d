"""Motion gating on the luma (Y) plane (public wrapper).

``MotionDetector`` keeps a downscaled running background of the Y plane.  Each
``update(y_plane)`` box-averages the frame by ``downscale`` (frame pixels per background pixel),
marks background pixels that differ from the background by more than ``threshold`` levels,
counts them per cell of ``cell`` x ``cell`` background pixels, and reports the cells whose
changed fraction reaches ``cell_fraction`` as motion, merged into boxes (8-connected cells).

Lighting-flip guard: when at least ``lighting_fraction`` of the whole frame changes at once
(lights switched, auto-exposure jump), that is not motion: the result says ``lighting_change``,
no cells are reported and the background restarts from the new frame.

The background follows the scene with ``alpha`` per frame (exponential moving average; Q8
levels, alpha in 1/32768 steps, integer arithmetic, so both backends agree exactly).
The first frame only initialises it.

Example::

    det = MotionDetector(1280, 720)
    res = det.update(frame[:720])           # the Y plane of an I420 frame
    if res.motion:
        for box in res.boxes: ...           # frame pixels
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np

from storeedge.native._backend import load_kernel
from storeedge.native.exc import NativeInputError

_kernel = load_kernel("motion")
BACKEND = _kernel.BACKEND


class Box(NamedTuple):
    """A motion box in frame pixels: left ``x``, top ``y``, width ``w``, height ``h``."""
    x: int
    y: int
    w: int
    h: int


class MotionResult(NamedTuple):
    """Outcome of one ``update``.

    ``motion``: any cell moved; ``lighting_change``: the whole-frame guard fired (no motion
    reported); ``changed_fraction``: fraction of background pixels that changed (0..1);
    ``fractions``: float32 [rows, cols] changed fraction per cell; ``cells``: bool
    [rows, cols] moving cells; ``boxes``: merged moving cells in frame pixels.
    """
    motion: bool
    lighting_change: bool
    changed_fraction: float
    fractions: np.ndarray
    cells: np.ndarray
    boxes: list[Box]


class KernelConfig(NamedTuple):
    """Integer parameters of the kernel (both backends)."""
    downscale: int          # frame pixels per background pixel (each axis)
    cell: int               # background pixels per cell (each axis)
    threshold_q8: int       # change threshold, levels * 256
    alpha_q15: int          # background learning rate * 32768


def _fail(msg: str) -> None:
    raise NativeInputError(msg)


def _int_in(name: str, value, lo: int, hi: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or not lo <= value <= hi:
        _fail(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _real_in(name: str, value, lo: float, hi: float) -> float:
    if not isinstance(value, Real) or isinstance(value, bool) or not lo <= value <= hi:
        _fail(f"{name} must be a number in {lo}..{hi}, got {value!r}")
    return float(value)


class MotionDetector:
    """Running-background motion gate for frames of ``width`` x ``height`` pixels.

    ``downscale`` (1..16 frame px), ``cell`` (1..64 background px), ``threshold`` (1..255
    levels), ``cell_fraction`` (0..1], ``lighting_fraction`` (0..1], ``alpha`` (0..1] per frame.
    """

    def __init__(self, width: int, height: int, *, downscale: int = 4, cell: int = 8,
                 threshold: int = 20, cell_fraction: float = 0.1,
                 lighting_fraction: float = 0.6, alpha: float = 0.05) -> None:
        self.width = _int_in("width", width, 1, 1 << 16)
        self.height = _int_in("height", height, 1, 1 << 16)
        f = _int_in("downscale", downscale, 1, 16)
        if width < f or height < f:
            _fail(f"frame {width}x{height} is smaller than downscale {f}")
        c = _int_in("cell", cell, 1, 64)
        thr = _int_in("threshold", threshold, 1, 255)
        self.cell_fraction = _real_in("cell_fraction", cell_fraction, 1e-6, 1.0)
        self.lighting_fraction = _real_in("lighting_fraction", lighting_fraction, 1e-6, 1.0)
        a = _real_in("alpha", alpha, 1.0 / 32768, 1.0)
        self.config = KernelConfig(f, c, thr * 256, round(a * 32768))
        sh, sw = height // f, width // f
        self.background = np.zeros((sh, sw), np.uint16)     # Q8 levels
        self._small = np.zeros((sh, sw), np.uint16)
        rows, cols = -(-sh // c), -(-sw // c)
        self._counts = np.zeros((rows, cols), np.int32)
        self._area = self._cell_areas(sh, sw, c)
        self._primed = False

    @staticmethod
    def _cell_areas(sh: int, sw: int, c: int) -> np.ndarray:
        hs = np.minimum(c, sh - np.arange(0, sh, c))
        ws = np.minimum(c, sw - np.arange(0, sw, c))
        return (hs[:, None] * ws[None, :]).astype(np.float32)

    def reset(self) -> None:
        """Forget the background; the next frame re-initialises it."""
        self._primed = False

    def _check(self, y_plane) -> np.ndarray:
        y = np.asarray(y_plane)
        if y.dtype != np.uint8 or y.ndim != 2:
            _fail(f"y_plane must be a 2-D uint8 array, got {y.dtype} {y.shape}")
        if y.shape != (self.height, self.width):
            _fail(f"y_plane must be {self.height}x{self.width} (rows x columns), got {y.shape}")
        return y if y.strides[1] == 1 else np.ascontiguousarray(y)

    def update(self, y_plane) -> MotionResult:
        """Feed one Y plane (uint8 [height, width], strided/read-only ok); return the result."""
        y = self._check(y_plane)
        cfg = self.config
        if not self._primed:
            cfg = cfg._replace(alpha_q15=32768)
        changed = _kernel.step(y, cfg, self.background, self._small, self._counts)
        frac = self._counts.astype(np.float32) / self._area
        total = changed / self._small.size
        if not self._primed or total >= self.lighting_fraction:
            lighting = self._primed
            self.background[...] = self._small
            self._primed = True
            empty = np.zeros(frac.shape, bool)
            return MotionResult(False, lighting, float(total), frac, empty, [])
        cells = frac >= self.cell_fraction
        boxes = self._boxes(cells)
        return MotionResult(bool(boxes), False, float(total), frac, cells, boxes)

    def _boxes(self, cells: np.ndarray) -> list[Box]:
        """Bounding boxes (frame pixels) of 8-connected groups of moving cells."""
        px = self.config.cell * self.config.downscale
        boxes = []
        for r0, c0, r1, c1 in _components(cells):
            x, y = c0 * px, r0 * px
            boxes.append(Box(x, y, min(c1 * px, self.width) - x, min(r1 * px, self.height) - y))
        return boxes


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _components(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(row0, col0, row1, col1) exclusive bounds of each 8-connected group of True cells.

    Horizontal runs are found with numpy, then runs touching in adjacent rows (diagonals
    included) are merged with a union-find: the work grows with the number of runs only."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]
    runs = list(zip(rows.tolist(), starts.tolist(), ends.tolist()))
    parent = list(range(len(runs)))
    prev: list[int] = []
    cur: list[int] = []
    row = -1
    for k, (r, c0, c1) in enumerate(runs):
        if r != row:
            prev, cur, row = (cur if r == row + 1 else []), [], r
        for q in prev:
            if runs[q][1] <= c1 and c0 <= runs[q][2]:
                parent[_find(parent, q)] = _find(parent, k)
        cur.append(k)
    boxes: dict[int, list[int]] = {}
    for k, (r, c0, c1) in enumerate(runs):
        b = boxes.setdefault(_find(parent, k), [r, c0, r + 1, c1])
        b[0], b[1], b[2], b[3] = min(b[0], r), min(b[1], c0), max(b[2], r + 1), max(b[3], c1)
    return [tuple(b) for b in boxes.values()]
