# cython: language_level=3
"""Barcode localiser kernels (Cython). Private: inputs are validated by storeedge.native.locate.

* ``cell_stats``  -- per-cell sums of the gradient structure tensor (exact int64).
* ``label_cells`` -- connected components of a cell mask, joining 8-neighbours whose circular
  orientation bins differ by at most ``max_diff``; labels numbered in raster order of first cell.
* ``warp_affine`` -- bilinear resampling of a crop through an affine map (border replicated).
* ``cell_energy`` / ``cell_features`` -- per-cell energy, isotropic energy, coherence, angle
  and texture from the tensor sums.
* ``linear_components`` / ``matrix_components`` -- per-component statistics (size, mean
  angle, extents, coherence of the summed tensor) for the 1-D and 2-D candidate screens.
* ``line_edges`` / ``edge_run`` -- bar edges along a sampled line and their run.
"""
import numpy as np
from libc.math cimport INFINITY, M_PI, atan2, cos, fabs, llrint, sin, sqrt
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


cdef inline Py_ssize_t _find(Py_ssize_t* parent, Py_ssize_t i) noexcept nogil:
    """Root of ``i`` (path halving); a raw pointer, not a memoryview: passing a slice to a
    cdef function costs a reference count per call."""
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


cdef inline void _union(Py_ssize_t* parent, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Join the sets of cells ``a`` and ``b``; the root is the smaller index."""
    cdef Py_ssize_t ra = _find(parent, a), rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


def label_cells(const unsigned char[:, ::1] mask, const int[:, ::1] bins, int nbins,
                int max_diff):
    """8-connected labels (int32, 0 = background, 1..n) and n.  With one bin (a plain
    mask) a cell whose N neighbour is set joins only that one: W, NW and NE are 8-neighbours
    of N, already in its set.  ``parent`` is set only for mask cells."""
    cdef Py_ssize_t h = mask.shape[0], w = mask.shape[1], n = h * w
    cdef Py_ssize_t y, x, i, r
    parent_arr = np.empty(max(n, 1), dtype=np.intp)
    cdef Py_ssize_t[::1] parent_mv = parent_arr
    cdef Py_ssize_t* parent = &parent_mv[0]
    labels = np.zeros(max(n, 1), dtype=np.int32)
    cdef int[::1] lab_mv = labels
    cdef int* lab = &lab_mv[0]
    cdef const unsigned char* mk
    cdef const int* bn
    cdef int count = 0, b
    cdef bint plain = nbins <= 1 or max_diff * 2 >= nbins
    if n == 0:
        return labels[:0].reshape(h, w), 0
    mk = &mask[0, 0]
    bn = &bins[0, 0]
    with nogil:
        for y in range(h):
            for x in range(w):
                i = y * w + x
                if not mk[i]:
                    continue
                parent[i] = i
                if plain:
                    _join_plain(mk, parent, i, x, y, w)
                    continue
                b = bn[i]
                # already-visited neighbours: W, NW, N, NE
                if x > 0 and mk[i - 1] and _close(b, bn[i - 1], nbins, max_diff):
                    _union(parent, i, i - 1)
                if y == 0:
                    continue
                if x > 0 and mk[i - w - 1] and _close(b, bn[i - w - 1], nbins, max_diff):
                    _union(parent, i, i - w - 1)
                if mk[i - w] and _close(b, bn[i - w], nbins, max_diff):
                    _union(parent, i, i - w)
                if x + 1 < w and mk[i - w + 1] and _close(b, bn[i - w + 1], nbins, max_diff):
                    _union(parent, i, i - w + 1)
        for i in range(n):
            if not mk[i]:
                continue
            r = _find(parent, i)
            if r == i:
                count += 1
                lab[i] = count
            else:
                lab[i] = lab[r]
    return labels.reshape(h, w), count


cdef inline void _join_plain(const unsigned char* mk, Py_ssize_t* parent, Py_ssize_t i,
                             Py_ssize_t x, Py_ssize_t y, Py_ssize_t w) noexcept nogil:
    """Mask cell ``i`` joins its visited 8-neighbours (every neighbour is close)."""
    if y > 0 and mk[i - w]:
        _union(parent, i, i - w)
        return
    if x > 0 and mk[i - 1]:
        _union(parent, i, i - 1)
    if y == 0:
        return
    if x > 0 and mk[i - w - 1]:
        _union(parent, i, i - w - 1)
    if x + 1 < w and mk[i - w + 1]:
        _union(parent, i, i - w + 1)


cdef inline bint _sample_inside(const double* m, Py_ssize_t i, Py_ssize_t j, Py_ssize_t h,
                                Py_ssize_t w) noexcept nogil:
    """True when output sample (j, i) lies in [0, w-1) x [0, h-1) with a 1/1024 px margin
    (its right and lower neighbours exist; the fixed-point stepping drifts far less)."""
    cdef double x = m[0] * j + m[1] * i + m[2], y = m[3] * j + m[4] * i + m[5]
    return x >= 0.0009765625 and y >= 0.0009765625 and x < w - 1.0009765625 and y < h - 1.0009765625


cdef inline void _clip_span(double a, double b, double hi, Py_ssize_t* j0,
                            Py_ssize_t* j1) noexcept nogil:
    """Narrow [j0, j1) to the j with 0 <= a j + b < hi (approximately: the caller checks
    the ends exactly)."""
    cdef double lo_t, hi_t, t
    if a == 0:
        if not (0 <= b < hi):
            j1[0] = j0[0]
        return
    lo_t = (0 - b) / a
    hi_t = (hi - b) / a
    if lo_t > hi_t:
        t = lo_t
        lo_t = hi_t
        hi_t = t
    if lo_t > j0[0]:
        j0[0] = <Py_ssize_t>lo_t + 1 if lo_t < j1[0] else j1[0]
    if hi_t < j1[0]:
        j1[0] = <Py_ssize_t>hi_t if hi_t > j0[0] else j0[0]


cdef void _inside_span(const double* m, Py_ssize_t i, Py_ssize_t out_w, Py_ssize_t h,
                       Py_ssize_t w, Py_ssize_t* j0, Py_ssize_t* j1) noexcept nogil:
    """[j0, j1): the output samples of row i lying inside the frame (see _sample_inside),
    a contiguous run since the coordinates are linear in j; empty when none."""
    j0[0] = 0
    j1[0] = out_w
    _clip_span(m[0], m[1] * i + m[2], w - 1.0, j0, j1)
    _clip_span(m[3], m[4] * i + m[5], h - 1.0, j0, j1)
    while j0[0] < j1[0] and not _sample_inside(m, i, j0[0], h, w):
        j0[0] += 1
    while j1[0] > j0[0] and not _sample_inside(m, i, j1[0] - 1, h, w):
        j1[0] -= 1


cdef void _warp_run_fast(const unsigned char* src, Py_ssize_t w, const double* m, Py_ssize_t i,
                         unsigned char* out, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Output samples j0 <= j < j1 of row i, all inside the frame (no clamping): source
    coordinates stepped in 32.32 fixed point (drift < 2^-19 px over 8192 samples, no
    float-to-int conversion per sample), bilinear interpolation in double as in the
    clamped form."""
    cdef long long xs = llrint((m[0] * j0 + m[1] * i + m[2]) * 4294967296.0)
    cdef long long ys = llrint((m[3] * j0 + m[4] * i + m[5]) * 4294967296.0)
    cdef long long dx = llrint(m[0] * 4294967296.0), dy = llrint(m[3] * 4294967296.0)
    cdef double fx, fy, top, bot
    cdef const unsigned char* r0
    cdef Py_ssize_t j
    for j in range(j0, j1):
        r0 = src + (ys >> 32) * w + (xs >> 32)
        fx = <double>(xs & 0xFFFFFFFFLL) * (1.0 / 4294967296.0)
        fy = <double>(ys & 0xFFFFFFFFLL) * (1.0 / 4294967296.0)
        top = r0[0] + (r0[1] - <double>r0[0]) * fx
        bot = r0[w] + (r0[w + 1] - <double>r0[w]) * fx
        out[j] = <unsigned char>(top + (bot - top) * fy + 0.5)
        xs += dx
        ys += dy


cdef void _warp_run_clamped(const unsigned char[:, ::1] src, const double* m, Py_ssize_t i,
                            unsigned char* out, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """Output samples j0 <= j < j1 of row i with coordinates clamped to the frame."""
    cdef Py_ssize_t h = src.shape[0], w = src.shape[1], j, ix, iy, ix1, iy1
    cdef double sx, sy, fx, fy, top, bot
    for j in range(j0, j1):
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
        out[j] = <unsigned char>(top + (bot - top) * fy + 0.5)


def warp_affine(const unsigned char[:, ::1] src, const double[::1] m, int out_h, int out_w):
    """out[i, j] = bilinear src at (x = m0*j + m1*i + m2, y = m3*j + m4*i + m5), coordinates
    clamped to the frame; returns uint8 (out_h, out_w).  The run of each row lying inside
    the frame skips the clamping (same values); only the samples beyond the frame's edge
    (a box reaching past it) take the clamped form."""
    cdef Py_ssize_t h = src.shape[0], w = src.shape[1]
    out = np.empty((out_h, out_w), dtype=np.uint8)
    cdef unsigned char[:, ::1] o = out
    cdef Py_ssize_t i, j0, j1
    with nogil:
        for i in range(out_h):
            _inside_span(&m[0], i, out_w, h, w, &j0, &j1)
            if j0 >= j1:
                _warp_run_clamped(src, &m[0], i, &o[i, 0], 0, out_w)
                continue
            _warp_run_clamped(src, &m[0], i, &o[i, 0], 0, j0)
            _warp_run_fast(&src[0, 0], w, &m[0], i, &o[i, 0], j0, j1)
            _warp_run_clamped(src, &m[0], i, &o[i, 0], j1, out_w)
    return out


cdef inline long long _fix(double v) noexcept nogil:
    """16.16 fixed point, rounded half to even (as Python's round)."""
    return llrint(v * 65536.0)


cdef struct Line:
    long long x0, y0, dx, dy         # 16.16 fixed-point px: start and step


cdef inline Line _line(double x0, double y0, double dx, double dy) noexcept nogil:
    cdef Line ln
    ln.x0 = _fix(x0)
    ln.y0 = _fix(y0)
    ln.dx = _fix(dx)
    ln.dy = _fix(dy)
    return ln


cdef Py_ssize_t _edges_c(const unsigned char[:, ::1] gray, Line ln, Py_ssize_t n, int window,
                         long long* p, long long* ps) noexcept nogil:
    """Core of ``line_edges``: profile into ``p`` (n values), edge indices into ``ps``;
    returns the edge count."""
    cdef long long x0 = ln.x0, y0 = ln.y0, dx = ln.dx, dy = ln.dy
    cdef Py_ssize_t h = gray.shape[0], w = gray.shape[1], i, m, half = window // 2
    cdef Py_ssize_t edges = 0
    cdef int state = 0, s
    cdef long long ix, iy, run = 0, absum = 0, d
    if n < window + 1 or window < 3:
        return 0
    for i in range(n):
        ix = (x0 + i * dx + 32768) >> 16
        iy = (y0 + i * dy + 32768) >> 16
        ix = 0 if ix < 0 else (w - 1 if ix > w - 1 else ix)
        iy = 0 if iy < 0 else (h - 1 if iy > h - 1 else iy)
        p[i] = gray[iy, ix]
    for i in range(window):
        run += p[i]
    m = n - 2 * half
    for i in range(half, n - half):         # first pass: mean |detail|
        if i > half:
            run += p[i + half] - p[i - half - 1]
        d = window * p[i] - run
        absum += d if d >= 0 else -d
    if absum < 2 * m * window:             # mean |detail| below 2 grey levels: flat
        return 0
    run = 0
    for i in range(window):
        run += p[i]
    for i in range(half, n - half):
        if i > half:
            run += p[i + half] - p[i - half - 1]
        d = window * p[i] - run
        s = 0
        if 2 * m * d > absum:
            s = 1
        elif 2 * m * d < -absum:
            s = -1
        if s != 0:
            if state != 0 and s != state:
                ps[edges] = i
                edges += 1
            state = s
    return edges


def line_edges(const unsigned char[:, ::1] gray, tuple line, int n, int window):
    """Edges met along a sampled line ``line = (x0, y0, dx, dy)``: points i = 0..n-1 at
    (x0 + i*dx, y0 + i*dy) in 16.16 fixed-point px, rounded and clamped to the frame.
    Over the points with a full
    ``window`` (odd) around them, detail D = window*p - (window sum); an edge is a change
    between D > +T and D < -T where T = mean |D| / 2 (exact integer arithmetic).  Returns the
    int64 indices i where each edge is confirmed (empty for a flat line)."""
    if n < window + 1 or window < 3:
        return np.zeros(0, dtype=np.int64)
    prof = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    cdef long long[::1] p = prof
    cdef long long[::1] ps = pos
    cdef Py_ssize_t edges
    cdef Line ln = Line(line[0], line[1], line[2], line[3])
    with nogil:
        edges = _edges_c(gray, ln, n, window, &p[0], &ps[0])
    return pos[:edges].copy()


cdef int _cmp_ll(const void* a, const void* b) noexcept nogil:
    cdef long long x = (<const long long*>a)[0], y = (<const long long*>b)[0]
    return (x > y) - (x < y)


cdef void _run_c(const long long* pos, Py_ssize_t k, long long core_lo, long long core_hi,
                 long long* diffs, long long* res) noexcept nogil:
    """Core of ``edge_run`` on ``k`` edge positions; result (count, lo, hi, m2) in ``res``."""
    cdef Py_ssize_t i, first = -1, last = -1, nd
    cdef long long m2
    res[0] = 0
    res[1] = 0
    res[2] = 0
    res[3] = 0
    for i in range(k):
        if core_lo <= pos[i] <= core_hi:
            if first < 0:
                first = i
            last = i
    if first < 0 or last - first + 1 < 4:
        return
    nd = last - first
    for i in range(nd):
        diffs[i] = pos[first + i + 1] - pos[first + i]
    qsort(diffs, nd, sizeof(long long), _cmp_ll)
    if nd % 2:
        m2 = 2 * diffs[nd // 2]
    else:
        m2 = diffs[nd // 2 - 1] + diffs[nd // 2]
    while first > 0 and 2 * (pos[first] - pos[first - 1]) < 6 * m2 + 2:
        first -= 1
    while last < k - 1 and 2 * (pos[last + 1] - pos[last]) < 6 * m2 + 2:
        last += 1
    res[0] = last - first + 1
    res[1] = pos[first]
    res[2] = pos[last]
    res[3] = m2


def edge_run(const unsigned char[:, ::1] gray, tuple line, int n, int window,
             long long core_lo, long long core_hi):
    """The run of bar edges through a core span of a sampled line (see ``line_edges``).

    Core edges: positions in [core_lo, core_hi]; at least 4 are needed.  m2 = twice the median
    spacing of the core edges (exact integer).  From the first and last core edge the run
    grows outwards while the gap to the next edge is < 6 * median + 1, i.e. 2 * gap <
    6 * m2 + 2.  Returns (edges in the run, first position, last position, m2), or
    (0, 0, 0, 0) when the core has fewer than 4 edges."""
    if n < window + 1 or window < 3:
        return (0, 0, 0, 0)
    buf = np.empty((3, n), dtype=np.int64)
    cdef long long[:, ::1] b = buf
    cdef long long res[4]
    cdef Py_ssize_t k
    cdef Line ln = Line(line[0], line[1], line[2], line[3])
    with nogil:
        k = _edges_c(gray, ln, n, window, &b[0, 0], &b[1, 0])
        _run_c(&b[1, 0], k, core_lo, core_hi, &b[2, 0], res)
    return (int(res[0]), int(res[1]), int(res[2]), int(res[3]))


def cell_energy(const long long[:, :, ::1] stats, double npx):
    """Per cell, from the tensor sums of ``cell_stats`` over ``npx`` sampled px: the mean
    squared gradient (sxx + syy) / npx and the isotropic part (sxx + syy - root) / npx with
    root = sqrt((sxx - syy)^2 + 4 sxy^2) (grey^2); two float64 (H, W) arrays."""
    cdef Py_ssize_t h = stats.shape[1], w = stats.shape[2], y, x
    energy = np.empty((h, w), dtype=np.float64)
    iso = np.empty((h, w), dtype=np.float64)
    cdef double[:, ::1] e = energy
    cdef double[:, ::1] s = iso
    cdef double sxx, syy, sxy, root
    with nogil:
        for y in range(h):
            for x in range(w):
                sxx = <double>stats[0, y, x]
                syy = <double>stats[1, y, x]
                sxy = <double>stats[2, y, x]
                root = sqrt((sxx - syy) * (sxx - syy) + 4.0 * (sxy * sxy))
                e[y, x] = <double>(stats[0, y, x] + stats[1, y, x]) / npx
                s[y, x] = (sxx + syy - root) / npx
    return energy, iso


def cell_features(const long long[:, :, ::1] stats, const double[:, ::1] energy, double npx,
                  double min_energy):
    """Coherence (0..1), gradient angle (rad), texture (smaller tensor eigenvalue per
    sampled px, grey^2) and the coherent energy along the doubled angle, energy x coherence
    x (cos 2a, sin 2a) = ((sxx - syy), 2 sxy) / npx (grey^2), of the cells with energy >=
    ``min_energy`` and > 0; 0 elsewhere.  Five float64 (H, W) arrays."""
    cdef Py_ssize_t h = stats.shape[1], w = stats.shape[2], y, x
    coh_a = np.zeros((h, w), dtype=np.float64)
    ang_a = np.zeros((h, w), dtype=np.float64)
    tex_a = np.zeros((h, w), dtype=np.float64)
    c2_a = np.zeros((h, w), dtype=np.float64)
    s2_a = np.zeros((h, w), dtype=np.float64)
    cdef double[:, ::1] coh = coh_a
    cdef double[:, ::1] ang = ang_a
    cdef double[:, ::1] tex = tex_a
    cdef double[:, ::1] c2 = c2_a
    cdef double[:, ::1] s2 = s2_a
    cdef double sxx, syy, sxy, root, trace
    with nogil:
        for y in range(h):
            for x in range(w):
                if not (energy[y, x] >= min_energy and energy[y, x] > 0):
                    continue
                sxx = <double>stats[0, y, x]
                syy = <double>stats[1, y, x]
                sxy = <double>stats[2, y, x]
                trace = sxx + syy
                root = sqrt((sxx - syy) * (sxx - syy) + 4.0 * (sxy * sxy))
                coh[y, x] = root / trace
                ang[y, x] = 0.5 * atan2(2.0 * sxy, sxx - syy)
                tex[y, x] = (trace - root) / (2.0 * npx)
                c2[y, x] = (sxx - syy) / npx
                s2[y, x] = 2.0 * sxy / npx
    return coh_a, ang_a, tex_a, c2_a, s2_a


def linear_components(const int[:, ::1] labels, int n, const double[:, ::1] weight,
                      const double[:, ::1] c2, const double[:, ::1] s2, int cell,
                      int min_cells):
    """Per label 0..n, float64 (n + 1, 12): cell count, weighted mean angle (rad: half the
    angle of the summed (``c2``, ``s2``) = ``weight`` x (cos 2a, sin 2a) of its cells), u
    extent lo/hi and v extent lo/hi of the cell centres (px; u along the angle, v across it;
    v clipped to +-2 weighted sigma), the weight sum, then the ``weight``-weighted moments of
    the cell centres in the same (u, v) frame: mean u, mean v (px), var u, cov uv, var v
    (px^2).  Mean angle, extents and moments only for labels with >= ``min_cells`` cells (0
    and +-inf otherwise: most labels of a frame are single cells)."""
    cdef Py_ssize_t h = labels.shape[0], w = labels.shape[1], y, x
    out = np.zeros((n + 1, 12), dtype=np.float64)
    cdef double[:, ::1] o = out
    sums_a = np.zeros((n + 1, 7), dtype=np.float64)   # sin, cos, w*v, w*v*v, w*u, w*u*u, w*u*v
    cdef double[:, ::1] sm = sums_a
    cs_a = np.empty((n + 1, 2), dtype=np.float64)      # cos, sin of each mean angle
    cdef double[:, ::1] cs = cs_a
    cdef int k
    cdef double wt, px, py, u, v, ca, sa, umean, vmean, vvar, vhalf, ws
    with nogil:
        for k in range(n + 1):
            o[k, 2] = INFINITY
            o[k, 3] = -INFINITY
            o[k, 4] = INFINITY
            o[k, 5] = -INFINITY
        for y in range(h):
            for x in range(w):
                k = labels[y, x]
                o[k, 0] += 1
                if k != 0:
                    o[k, 6] += weight[y, x]
        for y in range(h):
            for x in range(w):
                k = labels[y, x]
                if k == 0 or o[k, 0] < min_cells:
                    continue
                sm[k, 0] += s2[y, x]
                sm[k, 1] += c2[y, x]
        for k in range(n + 1):
            if k == 0 or o[k, 0] < min_cells:
                continue
            o[k, 1] = 0.5 * atan2(sm[k, 0], sm[k, 1])
            cs[k, 0] = cos(o[k, 1])
            cs[k, 1] = sin(o[k, 1])
        for y in range(h):
            for x in range(w):
                k = labels[y, x]
                if k == 0 or o[k, 0] < min_cells:
                    continue
                ca = cs[k, 0]
                sa = cs[k, 1]
                px = (x + 0.5) * cell
                py = (y + 0.5) * cell
                u = px * ca + py * sa
                v = -px * sa + py * ca
                wt = weight[y, x]
                o[k, 2] = u if u < o[k, 2] else o[k, 2]
                o[k, 3] = u if u > o[k, 3] else o[k, 3]
                o[k, 4] = v if v < o[k, 4] else o[k, 4]
                o[k, 5] = v if v > o[k, 5] else o[k, 5]
                sm[k, 2] += wt * v
                sm[k, 3] += wt * v * v
                sm[k, 4] += wt * u
                sm[k, 5] += wt * u * u
                sm[k, 6] += wt * u * v
        for k in range(1, n + 1):
            if o[k, 0] < min_cells:
                continue
            ws = o[k, 6] if o[k, 6] > 1e-9 else 1e-9
            umean = sm[k, 4] / ws
            vmean = sm[k, 2] / ws
            vvar = sm[k, 3] / ws - vmean * vmean
            vhalf = sqrt(vvar if vvar > 0 else 0.0) * 2.0
            if vmean - vhalf > o[k, 4]:
                o[k, 4] = vmean - vhalf
            if vmean + vhalf < o[k, 5]:
                o[k, 5] = vmean + vhalf
            o[k, 7] = umean
            o[k, 8] = vmean
            o[k, 9] = sm[k, 5] / ws - umean * umean
            o[k, 10] = sm[k, 6] / ws - umean * vmean
            o[k, 11] = vvar
    return out


def matrix_components(const int[:, ::1] labels, int n, const unsigned char[:, ::1] active,
                      const double[:, :, ::1] fields):
    """``fields`` = (energy, c2, s2, texture) per cell, float64 (4, H, W), with (c2, s2) =
    energy x coherence x (cos 2a, sin 2a) (``cell_features``).  Per label 0..n over its
    ``active`` cells, float64 (n + 1, 7): count, coherence of the summed tensor
    (|sum of (c2, s2)| / sum of energy), cell box y0, y1, x0, x1 (end
    exclusive; 2^30, 0, 2^30, 0 when empty) and the texture sum."""
    cdef Py_ssize_t h = labels.shape[0], w = labels.shape[1], y, x
    cdef const double[:, ::1] energy = fields[0]
    cdef const double[:, ::1] c2 = fields[1]
    cdef const double[:, ::1] s2 = fields[2]
    cdef const double[:, ::1] texture = fields[3]
    out = np.zeros((n + 1, 7), dtype=np.float64)
    cdef double[:, ::1] o = out
    sums_a = np.zeros((n + 1, 3), dtype=np.float64)   # e*c*sin, e*c*cos, e
    cdef double[:, ::1] sm = sums_a
    cdef int k
    with nogil:
        for k in range(n + 1):
            o[k, 2] = 1 << 30
            o[k, 4] = 1 << 30
        for y in range(h):
            for x in range(w):
                if not active[y, x]:
                    continue
                k = labels[y, x]
                o[k, 0] += 1
                sm[k, 0] += s2[y, x]
                sm[k, 1] += c2[y, x]
                sm[k, 2] += energy[y, x]
                o[k, 2] = y if y < o[k, 2] else o[k, 2]
                o[k, 3] = y + 1 if y + 1 > o[k, 3] else o[k, 3]
                o[k, 4] = x if x < o[k, 4] else o[k, 4]
                o[k, 5] = x + 1 if x + 1 > o[k, 5] else o[k, 5]
                o[k, 6] += texture[y, x]
        for k in range(n + 1):
            o[k, 1] = sqrt(sm[k, 0] * sm[k, 0] + sm[k, 1] * sm[k, 1]) / (
                sm[k, 2] if sm[k, 2] > 1e-9 else 1e-9)
    return out


cdef inline bint _inside_c(double px, double py, const double* box) noexcept nogil:
    """Point in the oriented box (cx, cy, length, height, angle)."""
    cdef double dx = px - box[0], dy = py - box[1], ca = cos(box[4]), sa = sin(box[4])
    return fabs(dx * ca + dy * sa) <= box[2] / 2 and fabs(-dx * sa + dy * ca) <= box[3] / 2


cdef bint _inside_any(double px, double py, const double* boxes, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(k):
        if _inside_c(px, py, boxes + 6 * i):
            return True
    return False


cdef bint _refine_c(const unsigned char[:, ::1] gray, double* box, const double* prm,
                    long long* buf) noexcept nogil:
    """Refit a 1-D box (cx, cy, length, height, angle) along its bars in place (see
    ``locate.refine_linear``); False when it has too few edges or is too flat."""
    cdef double ux = cos(box[4]), uy = sin(box[4]), cell = prm[0]
    cdef double extend = box[2] if box[2] > 48.0 * cell else 48.0 * cell
    cdef Py_ssize_t n = <Py_ssize_t>(box[2] + 2 * extend), k, j
    cdef long long core_lo = <long long>extend, core_hi = <long long>(extend + box[2])
    cdef long long best[4]
    cdef long long run[4]
    cdef double frac, x0, y0, mid
    cdef double fracs[3]
    fracs[0] = 0.0
    fracs[1] = -0.25
    fracs[2] = 0.25
    best[0] = 0
    best[1] = 0
    best[2] = 0
    best[3] = 0
    for j in range(3):
        frac = fracs[j]
        x0 = box[0] - n / 2.0 * ux - frac * box[3] * uy
        y0 = box[1] - n / 2.0 * uy + frac * box[3] * ux
        k = _edges_c(gray, _line(x0, y0, ux, uy), n, 15, buf, buf + n)
        _run_c(buf + n, k, core_lo, core_hi, buf + 2 * n, run)
        if run[0] >= prm[3] and run[2] - run[1] > best[2] - best[1]:
            best[0] = run[0]
            best[1] = run[1]
            best[2] = run[2]
            best[3] = run[3]
        if best[0] >= 2 * prm[3]:
            break
    if best[0] == 0 or box[3] - cell < prm[4] * (best[2] - best[1]):
        return False
    mid = (best[1] + best[2]) / 2.0 - n / 2.0
    box[0] = box[0] + mid * ux
    box[1] = box[1] + mid * uy
    box[2] = <double>(best[2] - best[1] + 2.0 * (3.0 * best[3] + 2.0))
    return True


def linear_boxes(const unsigned char[:, ::1] gray, const double[:, ::1] comps,
                 const double[::1] prm, int max_keep):
    """1-D boxes from components, best first: ``comps`` rows (angle rad, u min, u max,
    v min, v max px, weight); ``prm`` = (cell px, quiet zone fraction, min energy, min edges,
    min aspect).  Each component's box (quiet zone added) is skipped when its centre lies in
    a box already kept, else refitted along its bars (3 scan lines, see ``edge_run``) and
    kept when it has enough edges, is tall enough and its new centre is in no kept box.
    Returns float64 (k, 6) rows (cx, cy, length, height, angle, score), k <= max_keep."""
    cdef Py_ssize_t m = comps.shape[0], i, kept = 0, nmax = 0, n
    cdef double cell = prm[0], qz = prm[1], ux, uy, uc, vc, length, height, extend
    out = np.zeros((max(max_keep, 0), 6), dtype=np.float64)
    cdef double[:, ::1] o = out
    for i in range(m):                                   # scratch size: longest scan line
        length = (comps[i, 2] - comps[i, 1] + cell) * (1.0 + 2.0 * qz) + 2 * cell
        extend = length if length > 48.0 * cell else 48.0 * cell
        n = <Py_ssize_t>(length + 2 * extend)
        nmax = n if n > nmax else nmax
    buf_a = np.empty(3 * nmax + 3, dtype=np.int64)
    cdef long long[::1] buf = buf_a
    cdef double box[6]
    with nogil:
        for i in range(m):
            if kept >= max_keep:
                break
            ux = cos(comps[i, 0])
            uy = sin(comps[i, 0])
            length = (comps[i, 2] - comps[i, 1] + cell) * (1.0 + 2.0 * qz) + 2 * cell
            height = comps[i, 4] - comps[i, 3] + 2.0 * cell
            uc = (comps[i, 2] + comps[i, 1]) / 2
            vc = (comps[i, 4] + comps[i, 3]) / 2
            box[0] = uc * ux - vc * uy
            box[1] = uc * uy + vc * ux
            box[2] = length
            box[3] = height
            box[4] = comps[i, 0]
            box[5] = comps[i, 5] / prm[2]
            if _inside_any(box[0], box[1], &o[0, 0], kept):
                continue                                 # a piece of a code already found
            if not _refine_c(gray, box, &prm[0], &buf[0]):
                continue
            if _inside_any(box[0], box[1], &o[0, 0], kept):
                continue
            for n in range(6):
                o[kept, n] = box[n]
            kept += 1
    return out[:kept].copy()


cdef bint _any_row(const unsigned char[:, ::1] a, Py_ssize_t y, Py_ssize_t x0,
                   Py_ssize_t x1) noexcept nogil:
    cdef Py_ssize_t x
    for x in range(x0, x1):
        if a[y, x]:
            return True
    return False


cdef bint _any_col(const unsigned char[:, ::1] a, Py_ssize_t x, Py_ssize_t y0,
                   Py_ssize_t y1) noexcept nogil:
    cdef Py_ssize_t y
    for y in range(y0, y1):
        if a[y, x]:
            return True
    return False


cdef void _grow_c(const unsigned char[:, ::1] a, Py_ssize_t* b, int steps) noexcept nogil:
    """Grow the cell box b = (y0, y1, x0, x1) side by side while the next row/column has
    active cells, at most ``steps`` times."""
    cdef Py_ssize_t h = a.shape[0], w = a.shape[1]
    cdef int s
    cdef bint grown
    for s in range(steps):
        grown = False
        if b[0] > 0 and _any_row(a, b[0] - 1, b[2], b[3]):
            b[0] -= 1
            grown = True
        if b[1] < h and _any_row(a, b[1], b[2], b[3]):
            b[1] += 1
            grown = True
        if b[2] > 0 and _any_col(a, b[2] - 1, b[0], b[1]):
            b[2] -= 1
            grown = True
        if b[3] < w and _any_col(a, b[3], b[0], b[1]):
            b[3] += 1
            grown = True
        if not grown:
            break


cdef Py_ssize_t _crossings_c(const unsigned char[:, ::1] gray, const double* box,
                             long long* buf) noexcept nogil:
    """Most edges (window 9) met by 3 lines across ``box`` = (cx, cy, length, height,
    angle) spread over its height (``locate.edge_crossings``)."""
    cdef double cx = box[0], cy = box[1], height = box[3]
    cdef double ux = cos(box[4]), uy = sin(box[4]), off, x0, y0
    cdef Py_ssize_t n = <Py_ssize_t>box[2], k, best = 0, e
    if n < 2:
        n = 2
    for k in range(3):
        off = ((k + 1) / 4.0 - 0.5) * height
        x0 = cx - n / 2.0 * ux - off * uy
        y0 = cy - n / 2.0 * uy + off * ux
        e = _edges_c(gray, _line(x0, y0, ux, uy), n, 9, buf, buf + n)
        best = e if e > best else best
    return best


cdef bint _matrix_edges_c(const unsigned char[:, ::1] gray, const double* c, double cell,
                          double min_edges, long long* buf) noexcept nogil:
    """Module edges in 4 directions through the middle of a 2-D box (``locate``)."""
    cdef double across = c[2] - 4 * cell, down = c[3] - 4 * cell, size
    cdef double small = across if across < down else down
    cdef double line[5]
    cdef int k
    for k in range(4):
        size = across if k == 0 else (down if k == 2 else small)
        size = size if size > 2.0 else 2.0
        line[0] = c[0]
        line[1] = c[1]
        line[2] = size
        line[3] = size * 0.5
        line[4] = k * M_PI / 4
        if _crossings_c(gray, line, buf) < min_edges:
            return False
    return True


def matrix_boxes(const unsigned char[:, ::1] gray, const unsigned char[:, ::1] energetic,
                 const double[:, ::1] comps, const double[::1] prm):
    """2-D boxes from texture components: ``comps`` rows (y0, y1, x0, x1 cells, end
    exclusive, texture sum); ``prm`` = (cell px, min fill, min edges, min energy).  Each cell
    box grows (6 steps) over ``energetic`` cells, must be at most 3:1 and 80 cells, filled
    at least ``min fill`` by energetic cells, and show ``min edges`` module edges in 4
    directions through its middle.  Returns float64 (k, 6) rows (cx, cy, length, height,
    angle = 0, score) in px, with a 2-cell margin."""
    cdef Py_ssize_t m = comps.shape[0], i, y, x, kept = 0, cnt
    cdef double cell = prm[0], hh, ww, fill
    cdef Py_ssize_t b[4]
    cdef double c[6]
    out = np.zeros((m, 6), dtype=np.float64)
    cdef double[:, ::1] o = out
    cdef Py_ssize_t nmax = <Py_ssize_t>(max(gray.shape[0], gray.shape[1]) * 1.5) + 16
    buf_a = np.empty(2 * nmax, dtype=np.int64)
    cdef long long[::1] buf = buf_a
    with nogil:
        for i in range(m):
            b[0] = <Py_ssize_t>comps[i, 0]
            b[1] = <Py_ssize_t>comps[i, 1]
            b[2] = <Py_ssize_t>comps[i, 2]
            b[3] = <Py_ssize_t>comps[i, 3]
            _grow_c(energetic, b, 6)
            hh = (b[1] - b[0]) * cell
            ww = (b[3] - b[2]) * cell
            if hh <= 0 or ww <= 0:
                continue
            if (hh if hh > ww else ww) > 3 * (ww if hh > ww else hh):
                continue
            if (hh if hh > ww else ww) > 80 * cell:
                continue
            cnt = 0
            for y in range(b[0], b[1]):
                for x in range(b[2], b[3]):
                    cnt += energetic[y, x] != 0
            fill = <double>cnt / ((b[1] - b[0]) * (b[3] - b[2]))
            if fill < prm[1]:
                continue
            c[0] = <double>(b[2] + b[3]) * cell / 2
            c[1] = <double>(b[0] + b[1]) * cell / 2
            c[2] = ww + 2 * (2 * cell)
            c[3] = hh + 2 * (2 * cell)
            c[4] = 0.0
            c[5] = comps[i, 4] / prm[3] * fill
            if not _matrix_edges_c(gray, c, cell, prm[2], &buf[0]):
                continue
            for y in range(6):
                o[kept, y] = c[y]
            kept += 1
    return out[:kept].copy()
