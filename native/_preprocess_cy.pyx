# cython: language_level=3
"""Preprocessing kernel.  Per output row: every source row it needs is filtered horizontally
once (Q8 weights, u8 -> u16; fixed-stride loops on the uniform run of outputs, a table gather
at the edges or for irregular scales) into a small ring; the ring rows are combined
vertically (Q15 weights, high-half products -> Q7 int16); then the int16 colour matrix
(Q13 -> Q4), levels 0..255, and the output (u8 bytes, or the float32 affine for float32/int8).
No validation here: the wrapper (preprocess.py) checks everything and builds the tables.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int16_t, int32_t, int8_t
from libc.string cimport memcpy
from libc.stdlib cimport malloc, free

import sys

BACKEND = "cython"
if sys.byteorder != "little":       # 16-bit word loads and 8-byte pixel stores assume it
    raise ImportError("storeedge.native._preprocess_cy needs a little-endian CPU")

cdef extern from *:
    """
    /* GCC/Clang builtin, portable (x86 prefetcht0, AArch64 prfm): a hint, never a fault */
    #define STOREEDGE_PREFETCH(p) __builtin_prefetch((const void*)(p), 0, 3)
    """
    void STOREEDGE_PREFETCH(const void* p) noexcept nogil

cdef enum:
    KIND_U8 = 0
    KIND_F32 = 1
    KIND_I8 = 2

ctypedef struct Axis:
    const int32_t* start
    const uint16_t* w
    int n
    int taps
    int stride
    int lo
    int hi

ctypedef struct Colour:
    const int16_t* m        # [nch, 4]: Q13 coefficients on Q7 inputs, Q4 constant
    const float* aff        # [nch, 2]
    int nch
    int kind


cdef Axis _axis(object taps):
    cdef const int32_t[::1] s = taps.start
    cdef const uint16_t[:, ::1] w = taps.weights
    cdef Axis a
    a.start = &s[0]
    a.w = &w[0, 0]
    a.n = <int>s.shape[0]
    a.taps = <int>w.shape[1]
    a.stride = taps.stride
    a.lo = taps.lo
    a.hi = taps.hi
    return a


cdef Colour _colour(object plan):
    cdef const int16_t[:, ::1] m = plan.matrix
    cdef const float[:, ::1] aff = plan.affine
    cdef Colour c
    c.m = &m[0, 0]
    c.aff = &aff[0, 0]
    c.nch = <int>m.shape[0]
    c.kind = plan.kind
    return c


# --------------------------------------------------------------------------- horizontal pass
cdef inline void _hrun(const uint8_t* p, const uint16_t* w, int n, uint16_t* dst,
                       const int S, const int T, const int step) noexcept nogil:
    """dst[i] = sum_t w[t] * p[S*i + t*step] (Q8, exact in u16); S, T, step are literals."""
    cdef Py_ssize_t i
    cdef const uint8_t* q
    cdef uint16_t w0 = w[0], w1 = w[1]
    cdef uint16_t w2 = w[2] if T > 2 else 0
    cdef uint16_t w3 = w[3] if T > 3 else 0
    cdef uint16_t acc
    for i in range(n):
        q = p + S * i
        acc = <uint16_t>(w0 * q[0] + w1 * q[step])
        if T > 2:
            acc = <uint16_t>(acc + w2 * q[2 * step])
        if T > 3:
            acc = <uint16_t>(acc + w3 * q[3 * step])
        dst[i] = acc


ctypedef void (*hrun_fn)(const uint8_t*, const uint16_t*, int, uint16_t*) noexcept nogil

cdef void _h_s1_t2_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 1, 2, 1)


cdef void _h_s1_t3_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 1, 3, 1)


cdef void _h_s1_t4_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 1, 4, 1)


cdef void _h_s2_t2_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 2, 2, 1)


cdef void _h_s2_t3_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 2, 3, 1)


cdef void _h_s2_t4_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 2, 4, 1)


cdef void _h_s4_t2_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 4, 2, 1)


cdef void _h_s4_t3_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 4, 3, 1)


cdef void _h_s4_t4_p1(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 4, 4, 1)


cdef void _h_s2_t2_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 2, 2, 2)


cdef void _h_s2_t3_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 2, 3, 2)


cdef void _h_s2_t4_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 2, 4, 2)


cdef void _h_s4_t2_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 4, 2, 2)


cdef void _h_s4_t3_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 4, 3, 2)


cdef void _h_s4_t4_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 4, 4, 2)


cdef void _h_s8_t2_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 8, 2, 2)


cdef void _h_s8_t3_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 8, 3, 2)


cdef void _h_s8_t4_p2(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 8, 4, 2)


cdef void _h_s3_t2_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 3, 2, 3)


cdef void _h_s3_t3_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 3, 3, 3)


cdef void _h_s3_t4_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 3, 4, 3)


cdef void _h_s6_t2_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 6, 2, 3)


cdef void _h_s6_t3_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 6, 3, 3)


cdef void _h_s6_t4_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 6, 4, 3)


cdef void _h_s12_t2_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 12, 2, 3)


cdef void _h_s12_t3_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 12, 3, 3)


cdef void _h_s12_t4_p3(const uint8_t* p, const uint16_t* w, int n, uint16_t* d) noexcept nogil:
    _hrun(p, w, n, d, 12, 4, 3)


# Called through a table so that each loop is compiled on its own (not inlined into the
# caller), where GCC loop-vectorises it; [step - 1][stride index][taps - 2].
cdef hrun_fn HRUN[3][3][3]
HRUN[0][0][0] = _h_s1_t2_p1
HRUN[0][0][1] = _h_s1_t3_p1
HRUN[0][0][2] = _h_s1_t4_p1
HRUN[0][1][0] = _h_s2_t2_p1
HRUN[0][1][1] = _h_s2_t3_p1
HRUN[0][1][2] = _h_s2_t4_p1
HRUN[0][2][0] = _h_s4_t2_p1
HRUN[0][2][1] = _h_s4_t3_p1
HRUN[0][2][2] = _h_s4_t4_p1
HRUN[1][0][0] = _h_s2_t2_p2
HRUN[1][0][1] = _h_s2_t3_p2
HRUN[1][0][2] = _h_s2_t4_p2
HRUN[1][1][0] = _h_s4_t2_p2
HRUN[1][1][1] = _h_s4_t3_p2
HRUN[1][1][2] = _h_s4_t4_p2
HRUN[1][2][0] = _h_s8_t2_p2
HRUN[1][2][1] = _h_s8_t3_p2
HRUN[1][2][2] = _h_s8_t4_p2
HRUN[2][0][0] = _h_s3_t2_p3
HRUN[2][0][1] = _h_s3_t3_p3
HRUN[2][0][2] = _h_s3_t4_p3
HRUN[2][1][0] = _h_s6_t2_p3
HRUN[2][1][1] = _h_s6_t3_p3
HRUN[2][1][2] = _h_s6_t4_p3
HRUN[2][2][0] = _h_s12_t2_p3
HRUN[2][2][1] = _h_s12_t3_p3
HRUN[2][2][2] = _h_s12_t4_p3


cdef void _hw4(const uint8_t* p, const uint16_t* w, Py_ssize_t n, uint16_t* d,
               int T) noexcept nogil:
    """Stride 4, up to 4 taps, via 16-bit words (lane-wise masks/shifts, no byte shuffles):
    reads bytes 4i..4i+3 (the caller keeps the last output when T < 4).  Unaligned u16
    loads of u8 data: fine on x86 and AArch64, and nothing is stored to the source."""
    cdef const uint16_t* W = <const uint16_t*>p
    cdef uint16_t w0 = w[0], w1 = w[1]
    cdef uint16_t w2 = w[2] if T > 2 else 0
    cdef uint16_t w3 = w[3] if T > 3 else 0
    cdef uint16_t a, b
    cdef Py_ssize_t i
    for i in range(n):
        a = W[2 * i]
        b = W[2 * i + 1]
        d[i] = <uint16_t>(w0 * (a & 255) + w1 * (a >> 8) + w2 * (b & 255) + w3 * (b >> 8))


cdef void _hw2(const uint8_t* p, const uint16_t* w, Py_ssize_t n, uint16_t* d,
               int T) noexcept nogil:
    """Stride 2, up to 3 taps, via 16-bit words: reads bytes 2i..2i+3 (the caller keeps the
    last output when T == 3)."""
    cdef const uint16_t* W = <const uint16_t*>p
    cdef uint16_t w0 = w[0], w1 = w[1]
    cdef uint16_t w2 = w[2] if T > 2 else 0
    cdef uint16_t a, b
    cdef Py_ssize_t i
    if T == 2:
        for i in range(n):
            a = W[i]
            d[i] = <uint16_t>(w0 * (a & 255) + w1 * (a >> 8))
        return
    for i in range(n):
        a = W[i]
        b = W[i + 1]
        d[i] = <uint16_t>(w0 * (a & 255) + w1 * (a >> 8) + w2 * (b & 255))


cdef inline void _hone(const uint8_t* p, const uint16_t* w, int T, uint16_t* d) noexcept nogil:
    """A single output (contiguous taps)."""
    cdef int t
    cdef uint16_t acc = 0
    for t in range(T):
        acc = <uint16_t>(acc + w[t] * p[t])
    d[0] = acc


cdef bint _hwords(const uint8_t* p, const uint16_t* w, int n, uint16_t* d, int T,
                  int k) noexcept nogil:
    """16-bit-word loops for the common contiguous cases (step 1); False if not one."""
    if n < 2:
        return False
    if k == 4 and 3 <= T <= 4:
        _hw4(p, w, n - (T < 4), d, T)
    elif k == 2 and 2 <= T <= 3:
        _hw2(p, w, n - (T > 2), d, T)
    else:
        return False
    if (k == 4 and T < 4) or (k == 2 and T > 2):
        _hone(p + k * (n - 1), w, T, d + n - 1)
    return True


cdef bint _hfixed(const uint8_t* p, const uint16_t* w, int n, uint16_t* d, int T, int k,
                  int step) noexcept nogil:
    """Fixed-stride loop (k outputs-to-samples stride) when specialised; else False."""
    cdef int si = -1
    if step == 1 and _hwords(p, w, n, d, T, k):
        return True
    if step < 1 or step > 3 or T < 2 or T > 4:
        return False
    if k == 1:
        si = 0
    elif k == 2:
        si = 1
    elif k == 4:
        si = 2
    if si < 0:
        return False
    HRUN[step - 1][si][T - 2](p, w, n, d)
    return True


cdef void _hgeneric(const uint8_t* src, const Axis* a, int step, int i0, int i1,
                    uint16_t* dst) noexcept nogil:
    """Table gather for outputs [i0, i1)."""
    cdef Py_ssize_t i, t
    cdef uint16_t acc
    cdef const uint16_t* w
    cdef const uint8_t* s
    for i in range(i0, i1):
        w = a.w + i * a.taps
        s = src + a.start[i] * step
        acc = 0
        for t in range(a.taps):
            acc = <uint16_t>(acc + w[t] * s[t * step])
        dst[i] = acc


cdef void hpass(const uint8_t* src, const Axis* a, int step, uint16_t* dst) noexcept nogil:
    """Horizontal Q8 filter of one source row (sample j at src[j*step]) into ``dst``."""
    cdef int n = a.hi - a.lo
    if a.stride and _hfixed(src + a.start[a.lo] * step, a.w + a.lo * a.taps, n, dst + a.lo,
                            a.taps, a.stride, step):
        _hgeneric(src, a, step, 0, a.lo, dst)
        _hgeneric(src, a, step, a.hi, a.n, dst)
    else:
        _hgeneric(src, a, step, 0, a.n, dst)


# --------------------------------------------------------------------------- row ring + vertical
ctypedef struct Ring:
    uint16_t* buf           # (mask + 1) rows of ax.n horizontally filtered samples
    int* tag                # source row held by each slot (-1: none)
    int mask
    const uint8_t* plane
    Py_ssize_t rs           # row stride, bytes
    int step                # sample j of a row at plane[row * rs + j * step]
    int rows                # rows in the plane
    const Axis* ax


cdef int ring_init(Ring* r, const Axis* ay, const Axis* ax, const uint8_t* plane,
                   Py_ssize_t rs, int step, int rows) noexcept nogil:
    """Allocate a ring of horizontally filtered rows; -1 on allocation failure."""
    cdef int size = 2, k
    while size < ay.taps + 1:
        size <<= 1
    r.mask = size - 1
    r.buf = <uint16_t*>malloc(size * ax.n * sizeof(uint16_t))
    r.tag = <int*>malloc(size * sizeof(int))
    r.plane, r.rs, r.step, r.ax, r.rows = plane, rs, step, ax, rows
    if r.buf == NULL or r.tag == NULL:
        return -1
    for k in range(size):
        r.tag[k] = -1
    return 0


cdef void ring_free(Ring* r) noexcept nogil:
    free(r.buf)
    free(r.tag)


cdef const uint16_t* ring_row(Ring* r, int row) noexcept nogil:
    """Source ``row`` filtered horizontally (computed once, then reused)."""
    cdef int slot = row & r.mask
    cdef uint16_t* dst = r.buf + slot * r.ax.n
    if r.tag[slot] != row:
        _prefetch_row(r, row + 2)
        hpass(r.plane + row * r.rs, r.ax, r.step, dst)
        r.tag[slot] = row
    return dst


cdef inline void _prefetch_row(Ring* r, int row) noexcept nogil:
    """Ask for a source row two rows ahead (the part the filter reads), line by line."""
    cdef const uint8_t* p
    cdef const uint8_t* end
    if row >= r.rows:
        return
    p = r.plane + row * r.rs + r.ax.start[0] * r.step
    end = r.plane + row * r.rs + (r.ax.start[r.ax.n - 1] + r.ax.taps) * r.step
    while p < end:
        STOREEDGE_PREFETCH(p)
        p += 64


cdef inline uint16_t _mulhu(uint16_t a, uint16_t w) noexcept nogil:
    """(a * w) >> 16: the high half of a 16x16 product (one vector instruction)."""
    return <uint16_t>((<uint32_t>a * w) >> 16)


cdef inline void _v3(const uint16_t* a, const uint16_t* b, const uint16_t* c, uint16_t wa,
                     uint16_t wb, uint16_t wc, int n, int16_t* d, bint add) noexcept nogil:
    """d[i] (+)= hi(wa*a[i]) + hi(wb*b[i]) + hi(wc*c[i]): Q8 values x Q15 weights -> Q7
    (<= 32640: int16), 16-bit lanes."""
    cdef Py_ssize_t i
    if add:
        for i in range(n):
            d[i] = <int16_t>(d[i] + _mulhu(a[i], wa) + _mulhu(b[i], wb) + _mulhu(c[i], wc))
    else:
        for i in range(n):
            d[i] = <int16_t>(_mulhu(a[i], wa) + _mulhu(b[i], wb) + _mulhu(c[i], wc))


cdef void vpass(Ring* r, const Axis* ay, int i, int16_t* dst) noexcept nogil:
    """Output row ``i``: vertical filter of the ring's rows into ``dst`` (Q7 levels)."""
    cdef const uint16_t* w = ay.w + i * ay.taps
    cdef int row = ay.start[i], t = 0, k, got
    cdef const uint16_t* rows[3]
    cdef uint16_t ws[3]
    cdef bint add = False
    while t < ay.taps:
        got = 0
        while t < ay.taps and got < 3:
            if w[t]:
                rows[got] = ring_row(r, row + t)
                ws[got] = w[t]
                got += 1
            t += 1
        for k in range(got, 3):
            rows[k] = rows[0]
            ws[k] = 0
        if got:
            _v3(rows[0], rows[1], rows[2], ws[0], ws[1], ws[2], r.ax.n, dst, add)
            add = True


# --------------------------------------------------------------------------- colour + output
cdef inline int _clampi(int v, int lo, int hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef inline int8_t _q8(float t) noexcept nogil:
    """round-half-up(clip(t, -128, 127)) (|t| < 1e6 guaranteed by the wrapper)."""
    return <int8_t>(_clampi(<int>(t + <float>128.5), 0, 255) - 128)


cdef inline int16_t _mulhs(int16_t a, int16_t b) noexcept nogil:
    """(a * b) >> 16, signed (one vector instruction)."""
    return <int16_t>((<int32_t>a * b) >> 16)


cdef inline int16_t _lvl(int16_t t) noexcept nogil:
    """Q4 value -> level 0..255 (the +0.5 for rounding is in the constant)."""
    t = t >> 4
    t = t if t > 0 else 0
    return t if t < 255 else 255


cdef inline int16_t _dot(const int16_t* m, int16_t a, int16_t b, int16_t c) noexcept nogil:
    return <int16_t>(_mulhs(a, m[0]) + _mulhs(b, m[1]) + _mulhs(c, m[2]) + m[3])


cdef void _levels_any(const int16_t* a, const int16_t* b, const int16_t* c, int n,
                     const Colour* col, int32_t* lv) noexcept nogil:
    """lv[i] = level0 | level1 << 8 | level2 << 16 from Q7 inputs (16-bit lanes)."""
    cdef Py_ssize_t i
    cdef int16_t x, y, z
    cdef int16_t m0 = col.m[0], m1 = col.m[1], m2 = col.m[2], m3 = col.m[3]
    cdef int16_t m4 = col.m[4], m5 = col.m[5], m6 = col.m[6], m7 = col.m[7]
    cdef int16_t m8 = col.m[8], m9 = col.m[9], m10 = col.m[10], m11 = col.m[11]
    for i in range(n):
        x = a[i]
        y = b[i]
        z = c[i]
        lv[i] = (<int32_t>_lvl(_mulhs(x, m0) + _mulhs(y, m1) + _mulhs(z, m2) + m3)
                 | <int32_t>_lvl(_mulhs(x, m4) + _mulhs(y, m5) + _mulhs(z, m6) + m7) << 8
                 | <int32_t>_lvl(_mulhs(x, m8) + _mulhs(y, m9) + _mulhs(z, m10) + m11) << 16)


cdef void _levels_yuv(const int16_t* a, const int16_t* b, const int16_t* c, int n,
                      const Colour* col, int32_t* lv) noexcept nogil:
    """_levels_any for YUV -> R, G, B: the Y product is shared and the two zero products
    (R has no Cb, B no Cr) are skipped; the integers are identical."""
    cdef Py_ssize_t i
    cdef int16_t yk, y, z
    cdef int16_t ky = col.m[0], rv = col.m[2], cr = col.m[3], gu = col.m[5], gv = col.m[6]
    cdef int16_t cg = col.m[7], bu = col.m[9], cb = col.m[11]
    for i in range(n):
        yk = _mulhs(a[i], ky)
        y = b[i]
        z = c[i]
        lv[i] = (<int32_t>_lvl(yk + _mulhs(z, rv) + cr)
                 | <int32_t>_lvl(yk + _mulhs(y, gu) + _mulhs(z, gv) + cg) << 8
                 | <int32_t>_lvl(yk + _mulhs(y, bu) + cb) << 16)


cdef void levels3(const int16_t* a, const int16_t* b, const int16_t* c, int n,
                  const Colour* col, int32_t* lv) noexcept nogil:
    cdef const int16_t* m = col.m
    if m[0] == m[4] and m[0] == m[8] and m[1] == 0 and m[10] == 0:
        _levels_yuv(a, b, c, n, col, lv)
    else:
        _levels_any(a, b, c, n, col, lv)


cdef void _store_rgb(const int32_t* lv, int n, uint8_t* out) noexcept nogil:
    """Write packed pixels as 3 bytes each: 8-byte stores of two pixels, 6 bytes apart
    (little-endian), byte stores for the tail so nothing past the row is touched."""
    cdef Py_ssize_t j = 0
    cdef uint64_t q
    while 2 * j + 3 < n:
        q = (<uint64_t><uint32_t>lv[2 * j]) | ((<uint64_t><uint32_t>lv[2 * j + 1]) << 24)
        memcpy(out + 6 * j, &q, 8)
        j += 1
    for j in range(2 * j, n):
        out[3 * j] = <uint8_t>lv[j]
        out[3 * j + 1] = <uint8_t>(lv[j] >> 8)
        out[3 * j + 2] = <uint8_t>(lv[j] >> 16)


cdef void _store_affine(const int32_t* lv, int n, const Colour* col, uint8_t* out) noexcept nogil:
    """float32 or int8 outputs from packed levels: a * level + b per channel."""
    cdef Py_ssize_t i
    cdef float* of = <float*>out
    cdef int8_t* oi = <int8_t*>out
    cdef float f0 = col.aff[0], f1 = col.aff[1], f2 = col.aff[2]
    cdef float f3 = col.aff[3], f4 = col.aff[4], f5 = col.aff[5]
    if col.kind == KIND_F32:
        for i in range(n):
            of[3 * i] = <float>(lv[i] & 255) * f0 + f1
            of[3 * i + 1] = <float>((lv[i] >> 8) & 255) * f2 + f3
            of[3 * i + 2] = <float>((lv[i] >> 16) & 255) * f4 + f5
    else:
        for i in range(n):
            oi[3 * i] = _q8(<float>(lv[i] & 255) * f0 + f1)
            oi[3 * i + 1] = _q8(<float>((lv[i] >> 8) & 255) * f2 + f3)
            oi[3 * i + 2] = _q8(<float>((lv[i] >> 16) & 255) * f4 + f5)


cdef void _convert1(const int16_t* a, const int16_t* b, const int16_t* c, int n,
                    const Colour* col, uint8_t* out) noexcept nogil:
    """One output channel (gray) from three Q7 inputs."""
    cdef Py_ssize_t i
    cdef int16_t m[4]
    cdef int k
    cdef float f0 = col.aff[0], f1 = col.aff[1]
    cdef float* of = <float*>out
    cdef int8_t* oi = <int8_t*>out
    for k in range(4):
        m[k] = col.m[k]
    if col.kind == KIND_U8:
        for i in range(n):
            out[i] = <uint8_t>_lvl(_dot(m, a[i], b[i], c[i]))
    elif col.kind == KIND_F32:
        for i in range(n):
            of[i] = <float>_lvl(_dot(m, a[i], b[i], c[i])) * f0 + f1
    else:
        for i in range(n):
            oi[i] = _q8(<float>_lvl(_dot(m, a[i], b[i], c[i])) * f0 + f1)


cdef inline void convert(const int16_t* a, const int16_t* b, const int16_t* c, int n,
                         const Colour* col, int32_t* lv, uint8_t* out) noexcept nogil:
    """Colour matrix, rounding and output affine for one row (``lv``: n scratch ints)."""
    if col.nch == 1:
        _convert1(a, b, c, n, col, out)
        return
    levels3(a, b, c, n, col, lv)
    if col.kind == KIND_U8:
        _store_rgb(lv, n, out)
    else:
        _store_affine(lv, n, col, out)


# --------------------------------------------------------------------------- entry points
cdef int _run_rows(Ring* rings, int rings_ok, const Axis* ay0, const Axis* ay12, int n,
                   const Colour* col, uint8_t* out0, Py_ssize_t ostride) noexcept nogil:
    """Every output row: vertical pass of the three rings, colour, store; frees the rings.

    ``rings_ok`` says the three ``ring_init`` calls succeeded; ``ay0`` is the row axis of
    ring 0, ``ay12`` of rings 1 and 2.  Returns 0, or -1 when a ring or buffer could not be
    allocated (nothing is written then).
    """
    cdef int i
    cdef int16_t* hb = <int16_t*>malloc(3 * n * sizeof(int16_t))
    cdef int32_t* lv = <int32_t*>malloc(n * sizeof(int32_t))
    cdef int ok = rings_ok and hb != NULL and lv != NULL
    if ok:
        for i in range(ay0.n):
            vpass(&rings[0], ay0, i, hb)
            vpass(&rings[1], ay12, i, hb + n)
            vpass(&rings[2], ay12, i, hb + 2 * n)
            convert(hb, hb + n, hb + 2 * n, n, col, lv, out0 + i * ostride)
    for i in range(3):
        ring_free(&rings[i])
    free(hb)
    free(lv)
    return 0 if ok else -1


def run_yuv(const uint8_t[:, :] y, const uint8_t[:, :] u, const uint8_t[:, :] v,
            int cstep, plan, uint8_t[:, :] out):
    """Preprocess Y/U/V planes (chroma sample j at column j*cstep) into ``out`` rows."""
    cdef Axis lx = _axis(plan.luma_x), ly = _axis(plan.luma_y)
    cdef Axis cx = _axis(plan.chroma_x), cy = _axis(plan.chroma_y)
    cdef Colour col = _colour(plan)
    cdef Ring rings[3]
    cdef int ok
    with nogil:
        ok = (ring_init(&rings[0], &ly, &lx, &y[0, 0], y.strides[0], 1, y.shape[0])
              | ring_init(&rings[1], &cy, &cx, &u[0, 0], u.strides[0], cstep, u.shape[0])
              | ring_init(&rings[2], &cy, &cx, &v[0, 0], v.strides[0], cstep, v.shape[0])) == 0
        ok = _run_rows(rings, ok, &ly, &cy, lx.n, &col, &out[0, 0], out.strides[0]) == 0
    if not ok:
        raise MemoryError()


def run_rgb(const uint8_t[:, :] rgb, plan, uint8_t[:, :] out):
    """Preprocess a (H, W*3) RGB/BGR row view into ``out`` rows."""
    cdef Axis lx = _axis(plan.luma_x), ly = _axis(plan.luma_y)
    cdef Colour col = _colour(plan)
    cdef Ring rings[3]
    cdef int i, ok = 0
    with nogil:
        for i in range(3):
            ok |= ring_init(&rings[i], &ly, &lx, &rgb[0, 0] + i, rgb.strides[0], 3, rgb.shape[0])
        ok = _run_rows(rings, ok == 0, &ly, &ly, lx.n, &col, &out[0, 0], out.strides[0]) == 0
    if not ok:
        raise MemoryError()
