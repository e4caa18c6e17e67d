# cython: language_level=3
"""Barcode localiser kernels (Cython). Private: inputs are validated by storeedge.native.locate.

* ``cell_stats``  -- per-cell sums of the gradient structure tensor (exact int64).
* ``label_cells`` -- connected components of a cell mask, joining 8-neighbours whose circular
  orientation bins differ by at most ``max_diff``; labels numbered in raster order of first cell.
* ``warp_affine`` -- bilinear resampling of a crop through an affine map (border replicated).
"""
import numpy as np

BACKEND = "cython"


def cell_stats(const unsigned char[:, ::1] gray, int cell):
    """Sums over each ``cell`` x ``cell`` block of gx*gx, gy*gy, gx*gy (central differences,
    frame border pixels excluded); returns int64 array (3, H // cell, W // cell)."""
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1]
    cdef Py_ssize_t ch = h // cell, cw = w // cell
    out = np.zeros((3, ch, cw), dtype=np.int64)
    cdef long long[:, :, ::1] o = out
    cdef Py_ssize_t cy, cx, y, x, y0, y1, x0, x1
    cdef long long sxx, syy, sxy
    cdef int gx, gy
    with nogil:
        for cy in range(ch):
            y0 = cy * cell
            y1 = y0 + cell
            if y0 < 1:
                y0 = 1
            if y1 > h - 1:
                y1 = h - 1
            for cx in range(cw):
                x0 = cx * cell
                x1 = x0 + cell
                if x0 < 1:
                    x0 = 1
                if x1 > w - 1:
                    x1 = w - 1
                sxx = 0
                syy = 0
                sxy = 0
                for y in range(y0, y1):
                    for x in range(x0, x1):
                        gx = <int>gray[y, x + 1] - <int>gray[y, x - 1]
                        gy = <int>gray[y + 1, x] - <int>gray[y - 1, x]
                        sxx += gx * gx
                        syy += gy * gy
                        sxy += gx * gy
                o[0, cy, cx] = sxx
                o[1, cy, cx] = syy
                o[2, cy, cx] = sxy
    return out


cdef inline Py_ssize_t _find(Py_ssize_t[::1] parent, Py_ssize_t i) noexcept nogil:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


cdef inline bint _close(int a, int b, int nbins, int max_diff) noexcept nogil:
    cdef int d = a - b
    if d < 0:
        d = -d
    if nbins - d < d:
        d = nbins - d
    return d <= max_diff


def label_cells(const unsigned char[:, ::1] mask, const int[:, ::1] bins, int nbins,
                int max_diff):
    """8-connected labels (int32, 0 = background, 1..n) and n."""
    cdef Py_ssize_t h = mask.shape[0], w = mask.shape[1], n = h * w
    cdef Py_ssize_t y, x, i, j, k, r, ra, rb
    cdef int dy, dx
    parent_arr = np.arange(max(n, 1), dtype=np.intp)
    cdef Py_ssize_t[::1] parent = parent_arr
    labels = np.zeros((h, w), dtype=np.int32)
    cdef int[:, ::1] lab = labels
    cdef int count = 0
    with nogil:
        for y in range(h):
            for x in range(w):
                if not mask[y, x]:
                    continue
                i = y * w + x
                for k in range(4):        # already-visited neighbours: W, NW, N, NE
                    dy = -1 if k > 0 else 0
                    dx = -1 if k < 2 else (0 if k == 2 else 1)
                    if y + dy < 0 or x + dx < 0 or x + dx >= w:
                        continue
                    if not mask[y + dy, x + dx]:
                        continue
                    if not _close(bins[y, x], bins[y + dy, x + dx], nbins, max_diff):
                        continue
                    ra = _find(parent, i)
                    rb = _find(parent, (y + dy) * w + x + dx)
                    if ra != rb:
                        if ra < rb:
                            parent[rb] = ra
                        else:
                            parent[ra] = rb
        for y in range(h):
            for x in range(w):
                if not mask[y, x]:
                    continue
                i = y * w + x
                r = _find(parent, i)
                if r == i:
                    count += 1
                    lab[y, x] = count
                else:
                    lab[y, x] = lab[r // w, r % w]
    return labels, count


def warp_affine(const unsigned char[:, ::1] src, const double[::1] m, int out_h, int out_w):
    """out[i, j] = bilinear src at (x = m0*j + m1*i + m2, y = m3*j + m4*i + m5), coordinates
    clamped to the frame; returns uint8 (out_h, out_w)."""
    cdef Py_ssize_t h = src.shape[0], w = src.shape[1]
    out = np.empty((out_h, out_w), dtype=np.uint8)
    cdef unsigned char[:, ::1] o = out
    cdef Py_ssize_t i, j, ix, iy, ix1, iy1
    cdef double sx, sy, fx, fy, top, bot, v
    with nogil:
        for i in range(out_h):
            for j in range(out_w):
                sx = m[0] * j + m[1] * i + m[2]
                sy = m[3] * j + m[4] * i + m[5]
                if sx < 0:
                    sx = 0
                if sx > w - 1:
                    sx = w - 1
                if sy < 0:
                    sy = 0
                if sy > h - 1:
                    sy = h - 1
                ix = <Py_ssize_t>sx
                iy = <Py_ssize_t>sy
                fx = sx - ix
                fy = sy - iy
                ix1 = ix + 1 if ix + 1 < w else ix
                iy1 = iy + 1 if iy + 1 < h else iy
                top = src[iy, ix] + (src[iy, ix1] - <double>src[iy, ix]) * fx
                bot = src[iy1, ix] + (src[iy1, ix1] - <double>src[iy1, ix]) * fx
                v = top + (bot - top) * fy
                o[i, j] = <unsigned char>(v + 0.5)
    return out
