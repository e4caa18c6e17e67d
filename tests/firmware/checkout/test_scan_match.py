"""Scan-match kernel: behaviour, differential native vs twin, property tests on timing jitter."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from storeedge.native import scan_match as sm
from storeedge.native.exc import NativeInputError


def _run(kernel, t0, t1, pc, ts, sc, pre=0.5, post=1.5, dbl=2.0):
    ps = np.full(len(t0), -1, np.int32)
    sp = np.full(len(ts), -1, np.int32)
    fl = np.zeros(len(ts), np.int8)
    kernel.match(t0, t1, pc, ts, sc, pre, post, dbl, ps, sp, fl)
    return ps, sp, fl


def test_honest_basket_matches_every_pass():
    r = sm.match_scans([0, 2, 4], [0.5, 2.5, 4.5], [1, 2, 3], [0.7, 2.8, 4.6], [1, 2, 3])
    assert r.pass_scan.tolist() == [0, 1, 2]
    assert r.scan_flag.tolist() == [0, 0, 0]


def test_missed_scan_is_pass_without_scan():
    r = sm.match_scans([0, 2, 4], [0.5, 2.5, 4.5], [1, 2, 3], [0.7, 4.6], [1, 3])
    assert r.pass_scan.tolist() == [0, -1, 1]


def test_equal_code_wins_over_closer_time():
    # scan of item 2 arrives inside pass 1's window but belongs to pass 2
    r = sm.match_scans([0, 1.0], [0.5, 1.5], [1, 2], [1.2], [2])
    assert r.pass_scan.tolist() == [-1, 0]


def test_ticket_switch_matches_with_different_code():
    r = sm.match_scans([0], [0.5], [1], [0.8], [9])
    assert r.pass_scan.tolist() == [0]
    assert r.scan_flag.tolist() == [sm.SCAN_MATCHED]


def test_plu_scan_matches_pass_without_code():
    r = sm.match_scans([0], [0.5], [sm.NO_CODE], [0.9], [sm.code_key("PLU:4011")])
    assert r.pass_scan.tolist() == [0]


def test_double_scan_and_scan_without_pass():
    r = sm.match_scans([0], [0.5], [1], [0.6, 1.2, 30.0], [1, 1, 5])
    assert r.pass_scan.tolist() == [0]
    assert r.scan_flag.tolist() == [sm.SCAN_MATCHED, sm.SCAN_DOUBLE, sm.SCAN_NO_PASS]


def test_scan_outside_window_does_not_match():
    r = sm.match_scans([0], [0.5], [1], [2.5], [1], post_s=1.5)
    assert r.pass_scan.tolist() == [-1]
    assert r.scan_flag.tolist() == [sm.SCAN_NO_PASS]


@pytest.mark.parametrize("bad", [
    dict(pass_t1=[-1.0]), dict(scan_code=[-3]), dict(pass_t0=[[0.0]]), dict(scan_t=[np.nan]),
    dict(pass_code=[1, 2]), dict(pre_s=-1.0),
])
def test_wrapper_rejects_bad_input(bad):
    args = dict(pass_t0=[0.0], pass_t1=[0.5], pass_code=[1], scan_t=[0.6], scan_code=[1])
    kw = {k: bad.pop(k) for k in list(bad) if k == "pre_s"}
    args.update(bad)
    with pytest.raises(NativeInputError):
        sm.match_scans(*args.values(), **kw)


def test_read_only_inputs_accepted():
    arrays = [np.array(v, dtype=d) for v, d in (([0.0], float), ([0.5], float), ([1], np.int64),
                                                 ([0.6], float), ([1], np.int64))]
    for a in arrays:
        a.setflags(write=False)
    assert sm.match_scans(*arrays).pass_scan.tolist() == [0]


def _random_case(rng, n_pass, n_scan):
    t0 = np.sort(rng.uniform(0, 60, n_pass))
    t1 = t0 + rng.uniform(0.1, 1.5, n_pass)
    pc = rng.integers(-1, 6, n_pass).astype(np.int64)
    ts = np.sort(rng.uniform(0, 62, n_scan))
    sc = rng.integers(0, 6, n_scan).astype(np.int64)
    # quantise so exact ties occur and tie-breaking is exercised
    return np.round(t0, 1), np.round(t1, 1) + 0.0, pc, np.round(ts, 1), sc


def test_differential_native_vs_twin():
    try:
        cy = importlib.import_module("storeedge.native._scan_match_cy")
    except ImportError:
        pytest.fail("compiled scan-match kernel missing: rebuild with setup.py build_ext")
    py = importlib.import_module("storeedge.native._scan_match_py")
    rng = np.random.default_rng(20261124)
    for _ in range(300):
        case = _random_case(rng, int(rng.integers(0, 25)), int(rng.integers(0, 25)))
        case = (case[0], np.maximum(case[0], case[1])) + case[2:]
        a = _run(cy, *case)
        b = _run(py, *case)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


basket = st.lists(st.tuples(st.integers(0, 2**40), st.booleans()), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(basket, st.lists(st.floats(-0.25, 0.25), min_size=12, max_size=12),
       st.floats(0.0, 0.9))
def test_jitter_within_tolerance_keeps_assignment(items, jitter, latency):
    """Passes 2.5 s apart, scans at zone exit + latency + jitter: assignment is stable."""
    t0 = np.arange(len(items)) * 2.5
    t1 = t0 + 0.6
    codes = np.array([c for c, _ in items], np.int64)
    scanned = [i for i, (_, ok) in enumerate(items) if ok]
    ts = np.array([t1[i] + latency + jitter[i] for i in scanned])
    r = sm.match_scans(t0, t1, codes, ts, codes[scanned], pre_s=0.5, post_s=1.2)
    expect = np.full(len(items), -1)
    expect[scanned] = np.arange(len(scanned))
    assert r.pass_scan.tolist() == expect.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=15),
       st.lists(st.floats(0, 100), min_size=0, max_size=15), st.floats(-5, 5))
def test_common_time_shift_does_not_change_result(p, s, shift):
    t0 = np.round(np.array(p), 3)
    t1 = t0 + 0.5
    ts = np.round(np.array(s), 3)
    pc = np.arange(len(p)) % 3
    sc = np.arange(len(s)) % 4
    a = sm.match_scans(t0, t1, pc, ts, sc)
    b = sm.match_scans(t0 + 1024.0, t1 + 1024.0, pc, ts + 1024.0, sc)
    assert a.pass_scan.tolist() == b.pass_scan.tolist()
    # every pairing respects the window
    for i, j in enumerate(a.pass_scan):
        if j >= 0:
            assert t0[i] - 0.5 <= ts[j] <= t1[i] + 1.5
