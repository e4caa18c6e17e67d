# cython: language_level=3
"""Scan-match kernel: assign item passes to POS scans within time windows (private).

Inputs are validated by :mod:`storeedge.native.scan_match`; this module assumes contiguous,
correctly typed, equal-length arrays. Times are seconds on one monotonic clock.
"""
BACKEND = "cython"

cdef inline double _gap(double t0, double t1, double ts) noexcept nogil:
    """Seconds by which ``ts`` falls outside [t0, t1] (0 inside)."""
    if ts < t0:
        return t0 - ts
    if ts > t1:
        return ts - t1
    return 0.0


cdef inline int _tier(long long pcode, long long scode) noexcept nogil:
    """0 codes equal, 1 pass code unknown, 2 codes differ."""
    if pcode < 0:
        return 1
    if pcode == scode:
        return 0
    return 2


cdef void _assign(const double[::1] t0, const double[::1] t1, const long long[::1] pcode,
                  const double[::1] ts, const long long[::1] scode, double pre_s, double post_s,
                  int[::1] pass_scan, int[::1] scan_pass) noexcept nogil:
    cdef Py_ssize_t p, s, bp, bs
    cdef Py_ssize_t np_ = t0.shape[0]
    cdef Py_ssize_t ns = ts.shape[0]
    cdef int tier, best_tier
    cdef double gap, best_gap
    while True:
        bp = -1
        bs = -1
        best_tier = 3
        best_gap = 0.0
        for p in range(np_):
            if pass_scan[p] >= 0:
                continue
            for s in range(ns):
                if scan_pass[s] >= 0:
                    continue
                if ts[s] < t0[p] - pre_s or ts[s] > t1[p] + post_s:
                    continue
                tier = _tier(pcode[p], scode[s])
                gap = _gap(t0[p], t1[p], ts[s])
                if tier < best_tier or (tier == best_tier and gap < best_gap):
                    best_tier = tier
                    best_gap = gap
                    bp = p
                    bs = s
        if bp < 0:
            return
        pass_scan[bp] = <int>bs
        scan_pass[bs] = <int>bp


cdef void _flag_scans(const double[::1] ts, const long long[::1] scode, double double_s,
                      const int[::1] scan_pass, signed char[::1] flags) noexcept nogil:
    cdef Py_ssize_t s, o
    cdef Py_ssize_t ns = ts.shape[0]
    for s in range(ns):
        if scan_pass[s] >= 0:
            flags[s] = 0
            continue
        flags[s] = 1
        for o in range(ns):
            if o != s and scode[o] == scode[s] and ts[o] <= ts[s] and ts[s] - ts[o] <= double_s \
                    and (scan_pass[o] >= 0 or o < s):
                flags[s] = 2
                break


def match(const double[::1] t0, const double[::1] t1, const long long[::1] pcode,
          const double[::1] ts, const long long[::1] scode, double pre_s, double post_s,
          double double_s, int[::1] pass_scan, int[::1] scan_pass, signed char[::1] flags):
    """Fill ``pass_scan``, ``scan_pass`` (index or -1) and ``flags`` (0 matched, 1 no pass,
    2 double scan). Output arrays must be preset to -1."""
    with nogil:
        _assign(t0, t1, pcode, ts, scode, pre_s, post_s, pass_scan, scan_pass)
        _flag_scans(ts, scode, double_s, scan_pass, flags)
