# cython: language_level=3
"""Motion kernel: box-downscale the Y plane, compare with the Q8 background, count changed
pixels per cell and update the background, in one pass over the frame.  No validation here:
the wrapper (motion.py) checks shapes and parameters.
"""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.stdlib cimport malloc, free

BACKEND = "cython"


cdef void _colsum(const uint8_t* p, Py_ssize_t rs, int f, Py_ssize_t n,
                  uint16_t* acc) noexcept nogil:
    """acc[x] = sum of f rows at x (f <= 16: fits u16)."""
    cdef Py_ssize_t x
    cdef int k
    for x in range(n):
        acc[x] = p[x]
    for k in range(1, f):
        p += rs
        for x in range(n):
            acc[x] = <uint16_t>(acc[x] + p[x])


cdef inline void _rowsum(const uint16_t* acc, Py_ssize_t n, uint16_t* s,
                         const int f) noexcept nogil:
    """s[j] = sum of acc[j*f .. j*f + f - 1] (f a literal at the call: vectorises)."""
    cdef Py_ssize_t j
    cdef int t
    cdef uint16_t v
    for j in range(n):
        v = 0
        for t in range(f):
            v = <uint16_t>(v + acc[j * f + t])
        s[j] = v


cdef void _sums(const uint16_t* acc, Py_ssize_t n, uint16_t* s, int f) noexcept nogil:
    if f == 2:
        _rowsum(acc, n, s, 2)
    elif f == 4:
        _rowsum(acc, n, s, 4)
    elif f == 8:
        _rowsum(acc, n, s, 8)
    else:
        _rowsum_any(acc, n, s, f)


cdef void _rowsum_any(const uint16_t* acc, Py_ssize_t n, uint16_t* s, int f) noexcept nogil:
    cdef Py_ssize_t j
    cdef int t
    cdef uint32_t v
    for j in range(n):
        v = 0
        for t in range(f):
            v += acc[j * f + t]
        s[j] = <uint16_t>v




cdef void _levels(const uint16_t* s, Py_ssize_t n, int area, int32_t* sq) noexcept nogil:
    """sq[j] = (s[j] * 256 + area // 2) // area: the box mean in Q8 levels, exact.

    Power-of-two areas shift (vectorises); others multiply by a 2^40 reciprocal, exact
    because the numerator stays below 2^24 and area <= 256."""
    cdef Py_ssize_t j
    cdef int shift = 0
    cdef uint64_t magic
    while (1 << shift) < area:
        shift += 1
    if (1 << shift) == area:
        for j in range(n):
            sq[j] = (<int32_t>s[j] * 256 + area // 2) >> shift
    else:
        magic = ((<uint64_t>1 << 40) + area - 1) // area
        for j in range(n):
            sq[j] = <int32_t>(((<uint64_t>s[j] * 256 + area // 2) * magic) >> 40)


cdef int64_t _compare(const int32_t* sq, Py_ssize_t n, int thr, int alpha, int cell,
                      uint16_t* bg, uint16_t* small, uint8_t* flag,
                      int32_t* counts) noexcept nogil:
    """Per background pixel of one row: change test, EMA update (all-32-bit loop, vectorises),
    then the changed pixels counted per cell."""
    cdef Py_ssize_t j, c
    cdef int32_t d, b
    cdef int64_t total = 0
    cdef int32_t cnt
    for j in range(n):
        b = bg[j]
        d = sq[j] - b
        flag[j] = (d if d >= 0 else -d) > thr
        bg[j] = <uint16_t>(b + ((d * alpha) >> 15))
        small[j] = <uint16_t>sq[j]
    cdef Py_ssize_t end
    c = 0
    while c * cell < n:
        end = min((c + 1) * cell, n)
        cnt = 0
        for j in range(c * cell, end):
            cnt += flag[j]
        counts[c] += cnt
        total += cnt
        c += 1
    return total


def step(const uint8_t[:, :] y, cfg, uint16_t[:, ::1] bg, uint16_t[:, ::1] small,
         int32_t[:, ::1] counts):
    """One frame: box-downscale ``y`` into ``small`` (Q8 levels), count changed pixels per
    cell into ``counts``, move ``bg`` (Q8) towards ``small`` by alpha; return the total."""
    cdef int f = cfg.downscale, cell = cfg.cell, thr = cfg.threshold_q8, alpha = cfg.alpha_q15
    cdef Py_ssize_t sh = small.shape[0], sw = small.shape[1], r, k
    cdef int64_t total = 0
    cdef uint16_t* acc = <uint16_t*>malloc((sw * f + sw) * sizeof(uint16_t))
    cdef int32_t* sq = <int32_t*>malloc(sw * sizeof(int32_t))
    cdef uint8_t* flag = <uint8_t*>malloc(sw)
    if acc == NULL or sq == NULL or flag == NULL:
        free(acc)
        free(sq)
        free(flag)
        raise MemoryError()
    with nogil:
        for r in range(counts.shape[0]):
            for k in range(counts.shape[1]):
                counts[r, k] = 0
        for r in range(sh):
            _colsum(&y[r * f, 0], y.strides[0], f, sw * f, acc)
            _sums(acc, sw, acc + sw * f, f)
            _levels(acc + sw * f, sw, f * f, sq)
            total += _compare(sq, sw, thr, alpha, cell, &bg[r, 0], &small[r, 0], flag,
                              &counts[r // cell, 0])
    free(acc)
    free(sq)
    free(flag)
    return total
