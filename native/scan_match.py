"""Scan-match: assign item passes seen by the camera to POS scans, within time windows.

A pass ``p`` may take a scan at time ``t`` when ``t0[p] - pre_s <= t <= t1[p] + post_s``
(``t0``/``t1``: when the item entered/left the scan zone; ``post_s`` covers scanner and POS
latency). Pairs are chosen greedily: equal codes first, then passes whose code was not seen,
then differing codes (a ticket switch); within a tier the smallest time gap wins, ties go to
the lower pass then scan index, so the result is deterministic.

Codes are integer item keys (see :func:`code_key`; GS1-normalised so an EAN-13 and a UPC-A
read of the same item are equal); ``-1`` means "no code seen" for a pass. A scan left
unmatched is flagged :data:`SCAN_DOUBLE` when the same code was scanned up to ``double_s``
seconds before, otherwise :data:`SCAN_NO_PASS`.

Example::

    >>> r = match_scans([0.0, 3.0], [0.5, 3.5], [7, -1], [0.6], [7])
    >>> r.pass_scan.tolist(), r.scan_flag.tolist()
    ([0, -1], [0])
"""
from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from storeedge.native._backend import load_kernel
from storeedge.native.exc import NativeInputError

_kernel = load_kernel("scan_match")
BACKEND: str = _kernel.BACKEND

SCAN_MATCHED = 0
SCAN_NO_PASS = 1
SCAN_DOUBLE = 2
NO_CODE = -1


class MatchResult(NamedTuple):
    """Result of :func:`match_scans`.

    pass_scan: int32[P], index of the scan matched to each pass, -1 for none (missed scan).
    scan_pass: int32[S], index of the pass matched to each scan, -1 for none.
    scan_flag: int8[S], SCAN_MATCHED, SCAN_NO_PASS or SCAN_DOUBLE.
    """

    pass_scan: np.ndarray
    scan_pass: np.ndarray
    scan_flag: np.ndarray


def code_key(text: str) -> int:
    """A stable non-negative 63-bit integer for a normalised item key string."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def _vector(name: str, values, dtype) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise NativeInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf" and arr.size:
        raise NativeInputError(f"{name} must be numeric, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _check_windows(t0: np.ndarray, t1: np.ndarray, ts: np.ndarray) -> None:
    for name, arr in (("pass_t0", t0), ("pass_t1", t1), ("scan_t", ts)):
        if not np.all(np.isfinite(arr)):
            raise NativeInputError(f"{name} must be finite seconds")
    if np.any(t1 < t0):
        raise NativeInputError("pass_t1 must be >= pass_t0 for every pass")


def match_scans(pass_t0, pass_t1, pass_code, scan_t, scan_code, *, pre_s: float = 0.5,
                post_s: float = 1.5, double_s: float = 2.0) -> MatchResult:
    """Match passes to scans (all times in seconds on the same monotonic clock).

    Args:
        pass_t0, pass_t1: per pass, when the item entered and left the scan zone (s).
        pass_code: per pass, the item key seen on it or -1.
        scan_t, scan_code: per scan, when the POS line arrived (s) and its item key (>= 0).
        pre_s: how early a scan may precede the pass's scan-zone entry (s, >= 0).
        post_s: how late a scan may follow the pass's scan-zone exit (s, >= 0).
        double_s: a repeat of a code within this many seconds is a double scan (s, >= 0).
    """
    t0 = _vector("pass_t0", pass_t0, np.float64)
    t1 = _vector("pass_t1", pass_t1, np.float64)
    pc = _vector("pass_code", pass_code, np.int64)
    ts = _vector("scan_t", scan_t, np.float64)
    sc = _vector("scan_code", scan_code, np.int64)
    if not (len(t0) == len(t1) == len(pc)):
        raise NativeInputError("pass_t0, pass_t1 and pass_code must have the same length")
    if len(ts) != len(sc):
        raise NativeInputError("scan_t and scan_code must have the same length")
    _check_windows(t0, t1, ts)
    if np.any(sc < 0):
        raise NativeInputError("scan_code must be >= 0 (every scan has a code)")
    for name, val in (("pre_s", pre_s), ("post_s", post_s), ("double_s", double_s)):
        if not (np.isfinite(val) and val >= 0):
            raise NativeInputError(f"{name} must be a finite number of seconds >= 0, got {val}")
    pass_scan = np.full(len(t0), -1, dtype=np.int32)
    scan_pass = np.full(len(ts), -1, dtype=np.int32)
    flags = np.zeros(len(ts), dtype=np.int8)
    _kernel.match(t0, t1, pc, ts, sc, float(pre_s), float(post_s), float(double_s),
                  pass_scan, scan_pass, flags)
    return MatchResult(pass_scan, scan_pass, flags)
