# cython: language_level=3
"""Barcode localiser kernels (Cython). Private: inputs are validated by storeedge.native.locate.

* ``cell_stats``  -- per-cell sums of the gradient structure tensor (exact int64).
* ``label_cells`` -- connected components of a cell mask, joining 8-neighbours whose circular
  orientation bins differ by at most ``max_diff``; labels numbered in raster order of first cell.
* ``warp_affine`` -- bilinear resampling of a crop through an affine map (border replicated).
"""
import numpy as np
from libc.stdlib cimport qsort

BACKEND = "cython"


def cell_stats(const unsigned char[:, ::1] gray, int cell, int step):
    """Sums over each ``cell`` x ``cell`` block of gx*gx, gy*gy, gx*gy (central differences)
    at the pixels (x, y) with (x % cell) % step == 0 and (y % cell) % step == 0, frame border
    pixels excluded; returns int64 array (3, H // cell, W // cell)."""
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
                y0 = step if step > 1 else 1
            if y1 > h - 1:
                y1 = h - 1
            for cx in range(cw):
                x0 = cx * cell
                x1 = x0 + cell
                if x0 < 1:
                    x0 = step if step > 1 else 1
                if x1 > w - 1:
                    x1 = w - 1
                sxx = 0
                syy = 0
                sxy = 0
                y = y0
                while y < y1:
                    x = x0
                    while x < x1:
                        gx = <int>gray[y, x + 1] - <int>gray[y, x - 1]
                        gy = <int>gray[y + 1, x] - <int>gray[y - 1, x]
                        sxx += gx * gx
                        syy += gy * gy
                        sxy += gx * gy
                        x += step
                    y += step
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


def line_edges(const unsigned char[:, ::1] gray, tuple line, int n, int window):
    """Edges met along a sampled line ``line = (x0, y0, dx, dy)``: points i = 0..n-1 at
    (x0 + i*dx, y0 + i*dy) in 16.16 fixed-point px, rounded and clamped to the frame.
    Over the points with a full
    ``window`` (odd) around them, detail D = window*p - (window sum); an edge is a change
    between D > +T and D < -T where T = mean |D| / 2 (exact integer arithmetic).  Returns the
    int64 indices i where each edge is confirmed (empty for a flat line)."""
    cdef long long x0 = line[0], y0 = line[1], dx = line[2], dy = line[3]
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1]
    cdef int half = window // 2, i, m, state = 0, s, edges = 0
    cdef long long ix, iy, run = 0, absum = 0, d
    if n < window + 1 or window < 3:
        return np.zeros(0, dtype=np.int64)
    prof = np.empty(n, dtype=np.int64)
    det = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    cdef long long[::1] p = prof
    cdef long long[::1] dd = det
    cdef long long[::1] ps = pos
    with nogil:
        for i in range(n):
            ix = (x0 + i * dx + 32768) >> 16
            iy = (y0 + i * dy + 32768) >> 16
            ix = 0 if ix < 0 else (w - 1 if ix > w - 1 else ix)
            iy = 0 if iy < 0 else (h - 1 if iy > h - 1 else iy)
            p[i] = gray[iy, ix]
        for i in range(window):
            run += p[i]
        m = n - 2 * half
        for i in range(half, n - half):
            if i > half:
                run += p[i + half] - p[i - half - 1]
            d = window * p[i] - run
            dd[i] = d
            absum += d if d >= 0 else -d
        if absum < 2 * m * window:       # mean |detail| below 2 grey levels: flat
            m = 0
        for i in range(half, n - half if m > 0 else half):
            s = 0
            if 2 * m * dd[i] > absum:
                s = 1
            elif 2 * m * dd[i] < -absum:
                s = -1
            if s != 0:
                if state != 0 and s != state:
                    ps[edges] = i
                    edges += 1
                state = s
    return pos[:edges].copy()


cdef int _cmp_ll(const void* a, const void* b) noexcept nogil:
    cdef long long x = (<const long long*>a)[0], y = (<const long long*>b)[0]
    return (x > y) - (x < y)


def edge_run(const unsigned char[:, ::1] gray, tuple line, int n, int window,
             long long core_lo, long long core_hi):
    """The run of bar edges through a core span of a sampled line (see ``line_edges``).

    Core edges: positions in [core_lo, core_hi]; at least 4 are needed.  m2 = twice the median
    spacing of the core edges (exact integer).  From the first and last core edge the run
    grows outwards while the gap to the next edge is < 6 * median + 1, i.e. 2 * gap <
    6 * m2 + 2.  Returns (edges in the run, first position, last position, m2), or
    (0, 0, 0, 0) when the core has fewer than 4 edges."""
    pos_arr = line_edges(gray, line, n, window)
    cdef long long[::1] pos = pos_arr
    cdef Py_ssize_t k = pos.shape[0], i, first = -1, last = -1, nd
    cdef long long m2
    for i in range(k):
        if core_lo <= pos[i] <= core_hi:
            if first < 0:
                first = i
            last = i
    if first < 0 or last - first + 1 < 4:
        return (0, 0, 0, 0)
    nd = last - first
    diffs_arr = np.empty(nd, dtype=np.int64)
    cdef long long[::1] diffs = diffs_arr
    with nogil:
        for i in range(nd):
            diffs[i] = pos[first + i + 1] - pos[first + i]
        qsort(&diffs[0], nd, sizeof(long long), _cmp_ll)
        if nd % 2:
            m2 = 2 * diffs[nd // 2]
        else:
            m2 = diffs[nd // 2 - 1] + diffs[nd // 2]
        while first > 0 and 2 * (pos[first] - pos[first - 1]) < 6 * m2 + 2:
            first -= 1
        while last < k - 1 and 2 * (pos[last + 1] - pos[last]) < 6 * m2 + 2:
            last += 1
    return (int(last - first + 1), int(pos[first]), int(pos[last]), int(m2))
