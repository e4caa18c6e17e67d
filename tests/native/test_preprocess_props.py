"""Property tests of preprocess() over random geometries (hypothesis, small frames)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers.vision_reference as ref
from storeedge.native import _preprocess_py as twin
from storeedge.native import preprocess as pp
from storeedge.native.preprocess import preprocess


@st.composite
def geometries(draw):
    w = 2 * draw(st.integers(1, 40))
    h = 2 * draw(st.integers(1, 30))
    cw, ch = draw(st.integers(1, w)), draw(st.integers(1, h))
    crop = (draw(st.integers(0, w - cw)), draw(st.integers(0, h - ch)), cw, ch)
    out = (draw(st.integers(1, 50)), draw(st.integers(1, 50)))
    return w, h, crop, out, draw(st.booleans()), draw(st.sampled_from(["I420", "NV12"]))


def _frame(w, h, fmt, y, u, v):
    planes = (np.full((h, w), y, np.uint8), np.full((h // 2, w // 2), u, np.uint8),
              np.full((h // 2, w // 2), v, np.uint8))
    frame = np.concatenate([p.reshape(-1) for p in planes]).reshape(h * 3 // 2, w)
    return ref.i420_to_nv12(frame) if fmt == "NV12" else frame


@settings(max_examples=60, deadline=None)
@given(geometries(), st.integers(16, 235), st.integers(16, 240), st.integers(16, 240))
def test_uniform_frame_gives_its_colour_everywhere(geo, y, u, v):
    """Any crop, scale, letterbox: a flat colour stays that colour (within one level)."""
    w, h, crop, (ow, oh), letterbox, fmt = geo
    out = np.empty((oh, ow, 3), np.uint8)
    info = preprocess(_frame(w, h, fmt, y, u, v), fmt, out, crop=crop, letterbox=letterbox,
                      pad=3)
    c = info.content
    expect = ref.yuv_to_rgb(np.float64(y), np.float64(u), np.float64(v))
    inside = out[c.y:c.y + c.h, c.x:c.x + c.w].astype(float)
    assert np.abs(inside - expect).max() <= 1.0
    bars = np.ones(out.shape[:2], bool)
    bars[c.y:c.y + c.h, c.x:c.x + c.w] = False
    assert (out[bars] == 3).all()


@pytest.mark.skipif(pp.BACKEND != "cython", reason="compares the compiled kernel with its twin")
@settings(max_examples=60, deadline=None)
@given(geometries(), st.integers(0, 2**32 - 1))
def test_native_equals_twin_on_random_geometry(geo, seed):
    w, h, crop, (ow, oh), letterbox, fmt = geo
    frame = np.random.default_rng(seed).integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)
    a = np.empty((oh, ow, 3), np.uint8)
    b = np.empty_like(a)
    preprocess(frame, fmt, a, crop=crop, letterbox=letterbox)
    saved = pp._kernel
    pp._kernel = twin
    try:
        preprocess(frame, fmt, b, crop=crop, letterbox=letterbox)
    finally:
        pp._kernel = saved
    assert np.array_equal(a, b)
