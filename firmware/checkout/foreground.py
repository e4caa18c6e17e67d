"""Foreground segmentation on the lores I420 frame: what is on the counter that was not there.

Works at chroma resolution (the lores luma box-averaged 2x, plus U and V): a pixel is
foreground when its luma departs from the background by more than the shadow band allows
(ratio outside [``shadow_lo``, ``shadow_hi``] and by more than ``min_luma`` levels) or its
chroma moved by more than ``min_chroma`` levels. A global gain (median luma ratio) is
divided out first, so lighting drift is not motion. Foreground is counted in cells of
``cell`` x ``cell`` pixels; occupied cells are grouped into 8-connected blobs.

The background follows the scene: fast (``alpha``) where nothing is, slowly (``absorb``) under
foreground, so a bag left on the shelf fades into the background over ~1/absorb frames.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Blob(NamedTuple):
    """A group of foreground cells; coordinates in lores px (x1/y1 exclusive); ``cells`` is
    the list of (row, col) cells; ``area`` the foreground cell count."""

    x0: int
    y0: int
    x1: int
    y1: int
    cx: float
    cy: float
    area: int
    cells: tuple[tuple[int, int], ...]


@dataclass
class ForegroundParams:
    """Thresholds: levels (0-255), ratios, fractions, per-frame rates."""

    cell: int = 4
    cell_fraction: float = 0.3
    min_luma: float = 18.0
    shadow_lo: float = 0.55
    shadow_hi: float = 1.3
    min_chroma: float = 14.0
    alpha: float = 0.08
    absorb: float = 0.002
    min_blob_cells: int = 6


class ForegroundModel:
    """Background model and blob extraction for lores frames of ``width`` x ``height`` px."""

    def __init__(self, width: int, height: int, params: ForegroundParams | None = None):
        self.p = params or ForegroundParams()
        self.w, self.h = width, height
        self.cw, self.ch = width // 2, height // 2
        self.rows, self.cols = self.ch // self.p.cell, self.cw // self.p.cell
        self.bg: np.ndarray | None = None
        self.gain = 1.0
        self.last_mask = np.zeros((self.ch, self.cw), bool)

    def reset(self) -> None:
        """Forget the background (after the camera was blind: the scene may have changed)."""
        self.bg = None

    def _planes(self, lores: np.ndarray) -> np.ndarray:
        h, w, ch, cw = self.h, self.w, self.ch, self.cw
        y = lores[:h].reshape(ch, 2, cw, 2).mean(axis=(1, 3), dtype=np.float32)
        u = lores[h:h + h // 4].reshape(ch, cw).astype(np.float32)
        v = lores[h + h // 4:h * 3 // 2].reshape(ch, cw).astype(np.float32)
        return np.stack([y, u, v])

    def mask(self, lores: np.ndarray) -> np.ndarray:
        """Foreground mask (ch, cw) bool of this frame; updates the background."""
        cur = self._planes(lores)
        if self.bg is None:
            self.bg = cur
            return np.zeros((self.ch, self.cw), bool)
        bg = self.bg
        ratio_all = (cur[0, ::4, ::4] + 1.0) / (bg[0, ::4, ::4] + 1.0)
        self.gain = float(np.median(ratio_all))
        y = cur[0] / self.gain
        ratio = (y + 1.0) / (bg[0] + 1.0)
        p = self.p
        fg_y = ((ratio < p.shadow_lo) | (ratio > p.shadow_hi)) & (np.abs(y - bg[0]) > p.min_luma)
        fg_c = (np.abs(cur[1] - bg[1]) + np.abs(cur[2] - bg[2])) > p.min_chroma
        fg = fg_y | fg_c
        rate = np.where(fg, p.absorb, p.alpha).astype(np.float32)
        cur[0] = y
        bg += (cur - bg) * rate
        return fg

    def blobs(self, lores: np.ndarray) -> list[Blob]:
        """Foreground blobs of this frame (updates the background)."""
        fg = self.mask(lores)
        self.last_mask = fg
        c = self.p.cell
        cells = fg[:self.rows * c, :self.cols * c].reshape(self.rows, c, self.cols, c)
        occ = cells.mean(axis=(1, 3)) >= self.p.cell_fraction
        return [b for b in _components(occ, c * 2) if b.area >= self.p.min_blob_cells]


def _components(occ: np.ndarray, px: int) -> list[Blob]:
    """8-connected groups of True cells; ``px`` lores pixels per cell."""
    seen = np.zeros_like(occ)
    rows, cols = occ.shape
    out = []
    for r0, c0 in zip(*np.nonzero(occ)):
        if seen[r0, c0]:
            continue
        seen[r0, c0] = True
        todo, members = deque([(int(r0), int(c0))]), []
        while todo:
            r, c = todo.popleft()
            members.append((r, c))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < rows and 0 <= cc < cols and occ[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        todo.append((rr, cc))
        rs = np.array([m[0] for m in members])
        cs = np.array([m[1] for m in members])
        out.append(Blob(int(cs.min()) * px, int(rs.min()) * px, (int(cs.max()) + 1) * px,
                        (int(rs.max()) + 1) * px, (float(cs.mean()) + 0.5) * px,
                        (float(rs.mean()) + 0.5) * px, len(members), tuple(members)))
    return out
