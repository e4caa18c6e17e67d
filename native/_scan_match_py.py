"""Pure twin of the scan-match kernel (same names and results as ``_scan_match_cy``)."""
from __future__ import annotations

import numpy as np

BACKEND = "python"


def _pair_tables(t0, t1, pcode, ts, scode, pre_s, post_s):
    """Feasibility, tier and gap (s) for every (pass, scan) pair, as P x S arrays."""
    t0c, t1c, tsr = t0[:, None], t1[:, None], ts[None, :]
    feasible = (tsr >= t0c - pre_s) & (tsr <= t1c + post_s)
    gap = np.where(tsr < t0c, t0c - tsr, np.where(tsr > t1c, tsr - t1c, 0.0))
    pc = pcode[:, None]
    tier = np.where(pc < 0, 1, np.where(pc == scode[None, :], 0, 2))
    return feasible, tier, gap


def match(t0, t1, pcode, ts, scode, pre_s, post_s, double_s, pass_scan, scan_pass, flags):
    """Fill ``pass_scan``, ``scan_pass`` (index or -1) and ``flags`` (0 matched, 1 no pass,
    2 double scan). Greedy: lowest tier, then smallest gap, then lowest pass, then scan."""
    feasible, tier, gap = _pair_tables(np.asarray(t0), np.asarray(t1), np.asarray(pcode),
                                       np.asarray(ts), np.asarray(scode), pre_s, post_s)
    while feasible.any():
        best_tier = tier[feasible].min()
        cand = np.where(feasible & (tier == best_tier), gap, np.inf)
        p, s = np.unravel_index(int(np.argmin(cand)), cand.shape)
        pass_scan[p] = s
        scan_pass[s] = p
        feasible[p, :] = False
        feasible[:, s] = False
    _flag_scans(ts, scode, double_s, scan_pass, flags)


def _flag_scans(ts, scode, double_s, scan_pass, flags):
    n = len(ts)
    for s in range(n):
        if scan_pass[s] >= 0:
            flags[s] = 0
            continue
        flags[s] = 1
        for o in range(n):
            if (o != s and scode[o] == scode[s] and ts[o] <= ts[s] and ts[s] - ts[o] <= double_s
                    and (scan_pass[o] >= 0 or o < s)):
                flags[s] = 2
                break
