"""preprocess(): accuracy against the exact float reference, native vs twin, errors."""
from __future__ import annotations

import numpy as np
import pytest

import helpers.vision_reference as ref
from storeedge.native import _preprocess_py as twin
from storeedge.native import preprocess as pp
from storeedge.native.exc import NativeInputError
from storeedge.native.preprocess import Rect, preprocess

NATIVE = pp.BACKEND == "cython"
native_only = pytest.mark.skipif(not NATIVE, reason="compares the compiled kernel with its twin")


def run_twin(*args, **kwargs):
    """preprocess() forced through the pure twin (same wrapper, same tables)."""
    saved = pp._kernel
    pp._kernel = twin
    try:
        return preprocess(*args, **kwargs)
    finally:
        pp._kernel = saved


# ----------------------------------------------------------------------------- accuracy
ACCURACY_CASES = [
    # frame w, h, out w, h, crop, letterbox, (mean, 99.9th percentile) tolerance in levels.
    # u8 rounding alone gives a mean of 0.25.  Filtering Y/U/V before the conversion differs
    # from the exact order (convert, clip, then filter) only where one output box mixes clipped
    # and unclipped colours, which grows with the box: hence the looser 50x case.
    (320, 180, 80, 80, None, False, (0.35, 1.5)),
    (128, 96, 64, 64, None, False, (0.35, 1.5)),
    (64, 48, 96, 80, None, False, (0.35, 1.5)),
    (200, 150, 48, 40, (13, 7, 151, 121), False, (0.35, 1.5)),
    (160, 90, 64, 64, None, True, (0.35, 1.5)),
    (600, 200, 12, 9, None, False, (0.5, 4.0)),     # 50x / 22x shrink: many taps
    (40, 30, 12, 200, (3, 1, 33, 27), False, (0.35, 1.5)),  # 2.75x across, 7x stretch down
]


@pytest.mark.parametrize("w,h,ow,oh,crop,letterbox,tol", ACCURACY_CASES)
def test_i420_matches_exact_reference(w, h, ow, oh, crop, letterbox, tol):
    frame = ref.scene_i420(w, h, seed=w + oh)
    out = np.empty((oh, ow, 3), np.uint8)
    info = preprocess(frame, "I420", out, crop=crop, letterbox=letterbox)
    c = info.content
    y, u, v = ref.split_i420(frame)
    exact = ref.reference_yuv(y, u, v, crop or (0, 0, w, h), c.w, c.h)
    err = np.abs(out[c.y:c.y + c.h, c.x:c.x + c.w] - exact)
    assert err.mean() <= tol[0]
    assert np.percentile(err, 99.9) <= tol[1]


def test_nv12_equals_i420():
    frame = ref.scene_i420(96, 64, seed=3)
    a = np.empty((40, 40, 3), np.uint8)
    b = np.empty_like(a)
    preprocess(frame, "I420", a, crop=(5, 3, 77, 55))
    preprocess(ref.i420_to_nv12(frame), "NV12", b, crop=(5, 3, 77, 55))
    assert np.array_equal(a, b)


def test_chroma_siting_is_mpeg2_left():
    """A sharp horizontal chroma edge: co-sited reference fits, centre-sited does not."""
    w, h = 64, 32
    y = np.full((h, w), 126, np.uint8)
    u = np.full((h // 2, w // 2), 128, np.uint8)
    v = np.where(np.arange(w // 2) < 11, 60, 200).astype(np.uint8)[None, :].repeat(h // 2, 0)
    out = np.empty((h, w, 3), np.uint8)                    # 1:1, bilinear chroma only
    preprocess((y, u, v), "I420", out)
    good = ref.reference_yuv(y, u, v, (0, 0, w, h), w, h)
    centred = ref.yuv_to_rgb(y.astype(float), ref.upsample_chroma(u, 0, 0, w, h),
                             ref._bilinear_1d(v.astype(float)[np.repeat(np.arange(h // 2), 2)],
                                              (np.arange(w) - 0.5) / 2.0, axis=1))
    assert np.abs(out - good).max() <= 0.5 + 1e-9
    assert np.abs(out - centred).max() > 20


def test_rgb_and_bgr_against_reference():
    rgb = np.clip(ref.scene_rgb(150, 100, seed=5), 0, 255).round().astype(np.uint8)
    out = np.empty((37, 45, 3), np.uint8)
    preprocess(rgb, "RGB", out, crop=(3, 2, 140, 97))
    exact = ref.reference_rgb(rgb, (3, 2, 140, 97), 45, 37)
    err = np.abs(out - exact)             # rounding (0.5) + Q8 weight quantisation
    assert err.max() <= 1.0 and err.mean() <= 0.3
    bgr_out = np.empty_like(out)
    preprocess(np.ascontiguousarray(rgb[:, :, ::-1]), "BGR", bgr_out, crop=(3, 2, 140, 97))
    assert np.array_equal(bgr_out, out)
    swapped = np.empty_like(out)
    preprocess(rgb, "RGB", swapped, crop=(3, 2, 140, 97), color="bgr")
    assert np.array_equal(swapped, out[:, :, ::-1])


def test_rgb_identity_is_exact():
    rgb = np.random.default_rng(1).integers(0, 256, (21, 33, 3), dtype=np.uint8)
    out = np.empty((9, 11, 3), np.uint8)
    preprocess(rgb, "RGB", out, crop=(20, 10, 11, 9))
    assert np.array_equal(out, rgb[10:19, 20:31])


def test_uniform_colour_exact_levels():
    """A flat YUV colour gives the BT.601 equation's value, rounded."""
    y = np.full((16, 24), 81, np.uint8)
    u = np.full((8, 12), 90, np.uint8)
    v = np.full((8, 12), 240, np.uint8)
    out = np.empty((5, 7, 3), np.uint8)
    preprocess((y, u, v), "I420", out)
    expect = np.floor(ref.yuv_to_rgb(np.float64(81), np.float64(90), np.float64(240)) + 0.5)
    assert (out == expect).all(), (out[0, 0], expect)


def test_gray_is_luma_of_rgb():
    frame = ref.scene_i420(64, 48, seed=9)
    rgb = np.empty((24, 32, 3), np.uint8)
    gray = np.empty((24, 32), np.uint8)
    preprocess(frame, "I420", rgb)
    preprocess(frame, "I420", gray, color="gray")
    luma = rgb.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(gray - luma).max() <= 1.5


def test_float_and_int8_follow_the_u8_levels():
    frame = ref.scene_i420(64, 48, seed=2)
    u8 = np.empty((1, 20, 30, 3), np.uint8)
    f32 = np.empty((1, 20, 30, 3), np.float32)
    i8 = np.empty((1, 20, 30, 3), np.int8)
    preprocess(frame, "I420", u8)
    preprocess(frame, "I420", f32, scale=1 / 127.5, offset=-1.0)
    preprocess(frame, "I420", i8, scale=1 / 255, quant=(1 / 255, -128))
    assert np.allclose(f32, u8 / 127.5 - 1.0, atol=1e-6)
    assert np.array_equal(i8.astype(int), u8.astype(int) - 128)
    per_channel = np.empty_like(f32)
    preprocess(frame, "I420", per_channel, scale=(1.0, 2.0, 0.5), offset=(0.0, -1.0, 3.0))
    assert np.allclose(per_channel, u8 * [1.0, 2.0, 0.5] + [0.0, -1.0, 3.0], atol=1e-4)


def test_letterbox_pads_and_maps_back():
    frame = ref.scene_i420(160, 90, seed=4)
    out = np.empty((64, 64, 3), np.float32)
    info = preprocess(frame, "I420", out, letterbox=True, pad=114, scale=1 / 255)
    assert info.content == Rect(0, 14, 64, 36)
    assert np.allclose(out[:14], 114 / 255) and np.allclose(out[50:], 114 / 255)
    assert info.to_frame(0, 14) == (0.0, 0.0)
    assert info.to_frame(64, 50) == (160.0, 90.0)


def test_padded_picamera2_layout():
    """(h*3/2, stride) buffer with padded rows, as picamera2 gives, with width=."""
    frame = ref.scene_i420(64, 32, seed=6)
    y, u, v = ref.split_i420(frame)
    stride = 80
    padded = np.zeros((48, stride), np.uint8)
    padded[:32, :64] = y
    chroma = padded.reshape(-1)[32 * stride:]
    chroma[:16 * 40].reshape(16, 40)[:, :32] = u
    chroma[16 * 40:].reshape(16, 40)[:, :32] = v
    a = np.empty((16, 16, 3), np.uint8)
    b = np.empty_like(a)
    preprocess(frame, "I420", a)
    preprocess(padded, "I420", b, width=64)
    assert np.array_equal(a, b)


def test_read_only_and_strided_inputs_give_the_same_result():
    frame = ref.scene_i420(96, 64, seed=8)
    y, u, v = ref.split_i420(frame)
    big = np.zeros((64, 200), np.uint8)
    big[:, 50:146] = y
    ys = big[:, 50:146]                             # strided rows
    ro = [p.copy() for p in (ys, u, v)]
    for p in ro:
        p.setflags(write=False)
    flipped = np.ascontiguousarray(u[:, ::-1])[:, ::-1]     # negative column stride
    a = np.empty((30, 50, 3), np.uint8)
    b, c = np.empty_like(a), np.empty_like(a)
    preprocess(frame, "I420", a, crop=(1, 1, 93, 61))
    preprocess(tuple(ro), "I420", b, crop=(1, 1, 93, 61))
    preprocess((ys, flipped, v), "I420", c, crop=(1, 1, 93, 61))
    assert np.array_equal(a, b) and np.array_equal(a, c)
    up, down = np.empty_like(a), np.empty_like(a)                  # negative row strides
    preprocess((y[::-1], u[::-1], v[::-1]), "I420", up)
    preprocess((y[::-1].copy(), u[::-1].copy(), v[::-1].copy()), "I420", down)
    assert np.array_equal(up, down)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    d, e = np.empty((20, 20, 3), np.uint8), np.empty((20, 20, 3), np.uint8)
    preprocess(rgb, "RGB", d)
    rgb_ro = np.asfortranarray(rgb)
    rgb_ro.setflags(write=False)
    preprocess(rgb_ro, "RGB", e)
    assert np.array_equal(d, e)


# ----------------------------------------------------------------------------- differential
DIFF_CASES = [
    ("I420", 1280, 720, (320, 320, 3), {}),
    ("I420", 640, 480, (320, 320, 3), {}),
    ("NV12", 1280, 720, (1, 320, 320, 3), dict(letterbox=True, scale=1 / 127.5, offset=-1.0)),
    ("I420", 98, 62, (33, 47, 3), dict(crop=(0, 0, 98, 62))),
    ("I420", 98, 62, (17, 19, 3), dict(crop=(91, 55, 7, 7))),          # bottom-right border
    ("NV12", 202, 150, (224, 224, 1), dict(color="gray", quant=(0.02, 3), scale=0.01)),
    ("I420", 202, 150, (60, 80, 3), dict(crop=(1, 0, 201, 149), color="bgr")),
    ("RGB", 131, 77, (40, 61, 3), {}),                                  # odd width
    ("BGR", 131, 77, (50, 50, 3), dict(crop=(0, 70, 131, 7), letterbox=True, pad=7)),
    ("RGB", 64, 48, (1, 96, 128, 3), dict(scale=(1, 2, 3), offset=-0.5)),
]


def _random_frame(fmt, w, h, rng):
    if fmt in ("RGB", "BGR"):
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return rng.integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)


@native_only
@pytest.mark.parametrize("fmt,w,h,shape,kw", DIFF_CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int8])
def test_native_matches_twin(fmt, w, h, shape, kw, dtype):
    rng = np.random.default_rng(w * 7 + h)
    kw = dict(kw)
    if dtype == np.uint8:
        kw.pop("scale", None), kw.pop("offset", None), kw.pop("quant", None)
    elif dtype == np.int8:
        kw.setdefault("quant", (1 / 255, -128))
        kw.setdefault("scale", 1 / 255)
    else:
        kw.pop("quant", None)
    for _ in range(2):
        frame = _random_frame(fmt, w, h, rng)
        if rng.random() < 0.5:
            frame.setflags(write=False)
        a = np.zeros(shape, dtype)
        b = np.zeros(shape, dtype)
        preprocess(frame, fmt, a, **kw)
        run_twin(frame, fmt, b, **kw)
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        step = 1.0 if dtype != np.float32 else float(np.max(np.abs(np.atleast_1d(
            kw.get("scale", 1.0)))))
        assert diff.max() <= step + 1e-5        # an FMA may move one value by one level
        assert (diff > 1e-6).mean() <= 1e-3


# ----------------------------------------------------------------------------- errors
def _ok_frame():
    return np.zeros((72, 64), np.uint8)


@pytest.mark.parametrize("frame,fmt,out,kw,match", [
    (np.zeros((72, 64), np.uint16), "I420", np.zeros((8, 8, 3), np.uint8), {}, "uint8"),
    (np.zeros((71, 64), np.uint8), "I420", np.zeros((8, 8, 3), np.uint8), {}, "height"),
    (np.zeros((72, 63), np.uint8), "I420", np.zeros((8, 8, 3), np.uint8), {}, "even"),
    (np.zeros((72, 63), np.uint8), "NV12", np.zeros((8, 8, 3), np.uint8), {}, "even"),
    ((np.zeros((7, 8), np.uint8), np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.uint8)),
     "I420", np.zeros((4, 4, 3), np.uint8), {}, "even"),
    (np.zeros((8, 8, 4), np.uint8), "RGB", np.zeros((8, 8, 3), np.uint8), {},
     r"\(height, width, 3\)"),
    (_ok_frame(), "YUYV", np.zeros((8, 8, 3), np.uint8), {}, "fmt"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(crop=(0, 0, 65, 48)), "outside"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(crop=(-1, 0, 8, 8)), "outside"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(crop=(0, 0, 0, 8)), "outside"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(crop=(0.5, 0, 8, 8)), "integers"),
    (_ok_frame(), "I420", np.zeros((8, 8, 4), np.uint8), {}, "out must be"),
    (_ok_frame(), "I420", np.zeros((2, 8, 8, 3), np.uint8), {}, "out must be"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.float64), {}, "dtype"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8)[:, ::2], {}, "contiguous"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(color="gray"), "out must be"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(color="hsv"), "color"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(scale=2.0), "uint8"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.int8), {}, "quant"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.int8), dict(quant=(0, 0)), "positive"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.int8), dict(quant=(0.1, 300)), "zero_point"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.float32), dict(scale=(1, 2)), "scale"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.float32), dict(offset=np.nan), "offset"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(pad=256), "pad"),
    (_ok_frame(), "I420", np.zeros((8, 8, 3), np.uint8), dict(width=70), "width"),
    ((np.zeros((8, 8), np.uint8), np.zeros((4, 3), np.uint8), np.zeros((4, 4), np.uint8)),
     "I420", np.zeros((4, 4, 3), np.uint8), {}, "u plane"),
    ((np.zeros((8, 8), np.uint8),), "NV12", np.zeros((4, 4, 3), np.uint8), {}, "planes"),
])
def test_bad_inputs_raise_clear_errors(frame, fmt, out, kw, match):
    with pytest.raises(NativeInputError, match=match):
        preprocess(frame, fmt, out, **kw)


def test_out_not_an_array_and_read_only_out():
    with pytest.raises(NativeInputError, match="numpy array"):
        preprocess(_ok_frame(), "I420", [[0]])
    out = np.zeros((8, 8, 3), np.uint8)
    out.setflags(write=False)
    with pytest.raises(NativeInputError, match="writeable"):
        preprocess(_ok_frame(), "I420", out)
    assert issubclass(NativeInputError, ValueError)
