"""One-pass camera-frame preprocessing for a model input (public wrapper).

``preprocess(frame, fmt, out, ...)`` takes an I420, NV12, RGB or BGR frame, crops a rectangle,
resizes it (bilinear; box/area on an axis shrunk more than 2x), converts it to RGB, BGR or
grayscale and writes it into a caller-provided NHWC ``out`` (uint8, float32 with scale/offset,
or int8 with quantisation parameters), optionally letterboxed to keep the aspect ratio.

Colour: BT.601 limited range (Y 16..235, Cb/Cr 16..240), as picamera2/libcamera's YUV420
streams and OpenCV's ``COLOR_YUV2RGB_I420`` assume.  Chroma siting of 4:2:0: MPEG-2 style,
horizontally co-sited with the even luma columns ("left") and vertically centred between two
luma rows.  The result is defined as: upsample chroma bilinearly with that siting, convert every
full-resolution pixel to RGB in exact arithmetic, then resample with the filter above.  The
kernel applies the same linear filters to the Y/U/V planes before the conversion (composite
chroma taps computed here, exact) in fixed point (Q8 horizontal and Q15 vertical weights,
an int16 Q13 colour matrix); it differs from the exact reference only where some pixels of
one output box clip at 0/255 and others do not, and by fixed-point rounding: mean absolute
error 0.25 levels at 1280x720 -> 320x320 (docs/native-vision.md).

Example::

    out = np.empty((1, 320, 320, 3), np.float32)          # the model's input tensor
    info = preprocess(frame, "I420", out, crop=(160, 0, 960, 720),
                      scale=1 / 127.5, offset=-1.0)        # values in [-1, 1]
    fx, fy = info.to_frame(10.0, 20.0)                     # output pixel -> frame pixel
"""
from __future__ import annotations

import functools
import math
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np

from storeedge.native._backend import load_kernel
from storeedge.native.exc import NativeInputError

_kernel = load_kernel("preprocess")
BACKEND = _kernel.BACKEND

FORMATS = ("I420", "NV12", "RGB", "BGR")
COLORS = ("rgb", "bgr", "gray")
H_ONE = 256                 # horizontal weights: Q8 (u8 samples -> u16 Q8 values, exact)
V_ONE = 32768               # vertical weights: Q15, applied as (Q8 value * w) >> 16 -> Q7
M_FRAC = 13                 # colour matrix coefficients: Q13 int16
OUT_FRAC = 4                # colour matrix results: Q4 int16 (1/16 level)
KIND_U8, KIND_F32, KIND_I8 = 0, 1, 2
_KINDS = {np.dtype(np.uint8): KIND_U8, np.dtype(np.float32): KIND_F32, np.dtype(np.int8): KIND_I8}

# BT.601 limited range -> full-range R'G'B' levels 0..255; rows R, G, B; columns Y, Cb, Cr, 1.
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
_YK, _CK = 255.0 / 219.0, 255.0 / 224.0
_RV, _BU = 2 * (1 - _KR) * _CK, 2 * (1 - _KB) * _CK
_GU, _GV = _BU * _KB / _KG, _RV * _KR / _KG
BT601_LIMITED = np.array([
    [_YK, 0.0, _RV, -16 * _YK - 128 * _RV],
    [_YK, -_GU, -_GV, -16 * _YK + 128 * (_GU + _GV)],
    [_YK, _BU, 0.0, -16 * _YK - 128 * _BU],
])
LUMA_WEIGHTS = np.array([_KR, _KG, _KB])


class Rect(NamedTuple):
    """A rectangle in pixels: left ``x``, top ``y``, width ``w``, height ``h``."""
    x: int
    y: int
    w: int
    h: int


class PreprocessInfo(NamedTuple):
    """Where the frame landed in ``out``, to map model outputs back to the frame.

    ``crop``: the frame rectangle used (frame pixels); ``content``: where it was drawn in the
    output (output pixels; the rest is padding when letterboxed); ``scale_x``/``scale_y``:
    frame pixels per output pixel.
    """
    crop: Rect
    content: Rect
    scale_x: float
    scale_y: float

    def to_frame(self, x: float, y: float) -> tuple[float, float]:
        """Map an output-image point (output pixels, edges at integers) to frame pixels."""
        return (self.crop.x + (x - self.content.x) * self.scale_x,
                self.crop.y + (y - self.content.y) * self.scale_y)


class AxisTaps(NamedTuple):
    """Banded resampling weights of one axis: output i = sum_t weights[i, t] * src[start[i] + t].

    ``start`` is absolute in source samples; weights are Q8 (horizontal) or Q15 (vertical).  Outputs
    ``lo <= i < hi`` form a uniform run (``start[i] = start[lo] + stride * (i - lo)``, identical
    weight rows) that the kernel filters with a fixed-stride loop; ``stride`` is 0 when there is
    no such run (then lo == hi == 0).
    """
    start: np.ndarray       # int32 [n]
    weights: np.ndarray     # uint16 [n, taps], C-contiguous
    stride: int
    lo: int
    hi: int


class Plan(NamedTuple):
    """Everything the kernel needs for one geometry (built and cached by the wrapper)."""
    luma_x: AxisTaps
    luma_y: AxisTaps
    chroma_x: AxisTaps | None
    chroma_y: AxisTaps | None
    matrix: np.ndarray      # int16 [channels_out, 4]: see _matrix
    affine: np.ndarray      # float32 [channels_out, 2]: level -> a * level + b (float32/int8)
    kind: int               # KIND_U8 / KIND_F32 / KIND_I8


def _fail(msg: str) -> None:
    raise NativeInputError(msg)


# ----------------------------------------------------------------------------- filter tables
def luma_axis_weights(n_src: int, n_out: int) -> np.ndarray:
    """Dense float64 [n_out, n_src] resampling matrix of one axis (crop-relative).

    Box/area filter when shrinking more than 2x; otherwise bilinear with half-pixel centres,
    samples clamped to the crop (replicated edge).
    """
    scale = n_src / n_out
    w = np.zeros((n_out, n_src))
    rows = np.arange(n_out)
    if scale > 2.0:
        lo, hi = rows * scale, (rows + 1) * scale
        px = np.arange(n_src)
        overlap = np.minimum(hi[:, None], px + 1) - np.maximum(lo[:, None], px)
        return np.clip(overlap, 0.0, None) / scale
    centre = np.clip((rows + 0.5) * scale - 0.5, 0.0, n_src - 1)
    p0 = np.floor(centre).astype(np.int64)
    frac = centre - p0
    p1 = np.minimum(p0 + 1, n_src - 1)
    np.add.at(w, (rows, p0), 1.0 - frac)
    np.add.at(w, (rows, p1), frac)
    return w


def chroma_upsample(first: int, n_luma: int, n_chroma: int, vertical: bool):
    """Bilinear chroma upsampling of luma samples first..first+n_luma-1, as two taps per
    luma sample: (c0, 1 - frac) and (c0 + 1, frac), indices clamped to the plane.

    Siting: chroma sample j sits at luma x = 2j (co-sited) and luma y = 2j + 0.5 (centred).
    """
    pos = np.arange(first, first + n_luma, dtype=np.float64)
    c = (pos - 0.5) / 2.0 if vertical else pos / 2.0
    c = np.clip(c, 0.0, n_chroma - 1)
    c0 = np.floor(c).astype(np.int64)
    frac = c - c0
    return c0, np.minimum(c0 + 1, n_chroma - 1), frac


def compose_chroma(dense: np.ndarray, first: int, n_chroma: int, vertical: bool) -> np.ndarray:
    """Dense [n_out, n_chroma] weights: the luma-domain filter applied to upsampled chroma."""
    c0, c1, frac = chroma_upsample(first, dense.shape[1], n_chroma, vertical)
    out_t = np.zeros((n_chroma, dense.shape[0]))
    np.add.at(out_t, c0, dense.T * (1.0 - frac)[:, None])
    np.add.at(out_t, c1, dense.T * frac[:, None])
    return out_t.T


def quantise_rows(w: np.ndarray, one: int) -> np.ndarray:
    """Integer weights per row summing exactly to ``one`` (largest remainders get the rest)."""
    scaled = w * one
    q = np.floor(scaled + 1e-9)
    rem = scaled - q
    short = (one - q.sum(axis=1)).round().astype(np.int64)
    order = np.argsort(-rem, axis=1, kind="stable")
    for i in np.nonzero(short)[0]:
        q[i, order[i, :short[i]]] += 1
    return q


def band(dense: np.ndarray, offset: int, vertical: bool) -> AxisTaps:
    """Banded taps of a dense [n_out, n_src] matrix; ``offset`` makes starts absolute.

    Horizontal weights are Q8 (sum 256), vertical ones Q15 (sum 32768)."""
    n_out, n_src = dense.shape
    nz = np.abs(dense) > 1e-12
    first = nz.argmax(axis=1)
    last = n_src - 1 - nz[:, ::-1].argmax(axis=1)
    taps = int((last - first).max()) + 1
    start = np.minimum(first, n_src - taps)
    idx = start[:, None] + np.arange(taps)
    q = quantise_rows(dense[np.arange(n_out)[:, None], idx], V_ONE if vertical else H_ONE)
    weights = np.ascontiguousarray(q.astype(np.uint16))
    stride, lo, hi = uniform_run(start, weights)
    start = (start + offset).astype(np.int32)
    start.setflags(write=False)         # cached and shared between calls
    weights.setflags(write=False)
    return AxisTaps(start, weights, stride, lo, hi)


def uniform_run(start: np.ndarray, weights: np.ndarray) -> tuple[int, int, int]:
    """(stride, lo, hi) of the longest-looking uniform run around the middle output, if any."""
    n = len(start)
    mid = n // 2
    if n < 4 or start[mid + 1] <= start[mid]:
        return 0, 0, 0
    k = int(start[mid + 1] - start[mid])
    ok = (weights == weights[mid]).all(axis=1) & (start - start[mid] == k * (np.arange(n) - mid))
    lo, hi = mid, mid + 1
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < n and ok[hi]:
        hi += 1
    if hi - lo < n // 2:
        return 0, 0, 0
    return k, lo, hi


@functools.lru_cache(maxsize=64)
def _axis_plan(first: int, n_src: int, n_out: int, n_chroma: int, vertical: bool):
    """Luma taps and (when ``n_chroma``) composite chroma taps of one axis."""
    dense = luma_axis_weights(n_src, n_out)
    luma = band(dense, first, vertical)
    if not n_chroma:
        return luma, None
    return luma, band(compose_chroma(dense, first, n_chroma, vertical), 0, vertical)


# ----------------------------------------------------------------------------- validation
def _plane(a, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint8:
        _fail(f"{name} must be uint8, got {a.dtype}")
    if a.ndim != 2:
        _fail(f"{name} must be 2-D (rows, columns), got shape {a.shape}")
    if shape is not None and a.shape != shape:
        _fail(f"{name} must have shape {shape}, got {a.shape}")
    if a.strides[1] != 1:
        a = np.ascontiguousarray(a)
    return a


def _split_yuv(frame, fmt: str, width: int | None):
    """Return (y, u, v, chroma_step) views of an I420/NV12 frame (no copy when rows are dense)."""
    if isinstance(frame, (tuple, list)):
        return _planes_from_tuple(frame, fmt)
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 2:
        _fail(f"{fmt} frame must be a 2-D uint8 array (height*3/2, stride) or a tuple of "
              f"planes, got {a.dtype} {a.shape}")
    rows, stride = a.shape
    w = stride if width is None else width
    if rows % 3:
        _fail(f"{fmt} frame has {rows} rows; expected height*3/2 with an even height")
    h = rows * 2 // 3
    _check_even(w, h, fmt)
    if not 0 < w <= stride:
        _fail(f"width {w} must be within 1..{stride} (the frame's row length)")
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    y = a[:h, :w]
    if fmt == "NV12":
        uv = a[h:, :w]
        return y, uv, uv[:, 1:], 2
    flat = a.reshape(-1)
    cs, n = stride // 2, (h // 2) * (stride // 2)
    u = flat[h * stride:h * stride + n].reshape(h // 2, cs)[:, :w // 2]
    v = flat[h * stride + n:h * stride + 2 * n].reshape(h // 2, cs)[:, :w // 2]
    return y, u, v, 1


def _check_even(w: int, h: int, fmt: str) -> None:
    if w < 2 or h < 2 or w % 2 or h % 2:
        _fail(f"{fmt} needs even width and height (4:2:0 chroma), got {w}x{h}")


def _planes_from_tuple(frame, fmt: str):
    if fmt == "I420":
        if len(frame) != 3:
            _fail(f"I420 planes must be (y, u, v), got {len(frame)} planes")
        y = _plane(frame[0], "y plane")
        _check_even(y.shape[1], y.shape[0], fmt)
        half = (y.shape[0] // 2, y.shape[1] // 2)
        return y, _plane(frame[1], "u plane", half), _plane(frame[2], "v plane", half), 1
    if len(frame) != 2:
        _fail(f"NV12 planes must be (y, uv), got {len(frame)} planes")
    y = _plane(frame[0], "y plane")
    _check_even(y.shape[1], y.shape[0], fmt)
    uv = _plane(frame[1], "uv plane", (y.shape[0] // 2, y.shape[1]))
    return y, uv, uv[:, 1:], 2


def _rgb_rows(frame, fmt: str) -> np.ndarray:
    """(H, W*3) uint8 view of an RGB/BGR frame with dense pixels (copies only if needed)."""
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        _fail(f"{fmt} frame must be a uint8 array (height, width, 3), got {a.dtype} {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        _fail(f"{fmt} frame is empty: {a.shape}")
    if a.strides[2] != 1 or a.strides[1] != 3:
        a = np.ascontiguousarray(a)
    return np.lib.stride_tricks.as_strided(a, (a.shape[0], a.shape[1] * 3),
                                           (a.strides[0], 1), writeable=False)


def _crop_rect(crop, w: int, h: int) -> Rect:
    if crop is None:
        return Rect(0, 0, w, h)
    if len(crop) != 4 or not all(isinstance(v, Integral) and not isinstance(v, bool)
                                 for v in crop):
        _fail(f"crop must be 4 integers (x, y, w, h) in frame pixels, got {crop!r}")
    r = Rect(*(int(v) for v in crop))
    if r.w < 1 or r.h < 1 or r.x < 0 or r.y < 0 or r.x + r.w > w or r.y + r.h > h:
        _fail(f"crop {tuple(r)} is outside the {w}x{h} frame")
    return r


def _out_layout(out, color: str) -> tuple[np.ndarray, int]:
    """Validate ``out``; return its (OH, OW, C) view and C."""
    if not isinstance(out, np.ndarray):
        _fail(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype not in _KINDS:
        _fail(f"out dtype must be uint8, float32 or int8, got {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        _fail("out must be C-contiguous and writeable")
    if color not in COLORS:
        _fail(f"color must be one of {COLORS}, got {color!r}")
    channels = 1 if color == "gray" else 3
    shape = out.shape
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 2 and channels == 1:
        shape = shape + (1,)
    if len(shape) != 3 or shape[2] != channels or shape[0] < 1 or shape[1] < 1:
        _fail(f"out must be (H, W, {channels}) or (1, H, W, {channels}) for color={color!r}, "
              f"got {out.shape}")
    return out.reshape(shape), channels


def _per_channel(value, name: str, channels: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, channels)
    if arr.size != channels or not np.isfinite(arr).all():
        _fail(f"{name} must be a finite number or {channels} numbers, got {value!r}")
    return arr


def _affine(kind: int, channels: int, scale, offset, quant) -> np.ndarray:
    """Per-channel (a, b): output = a * level + b before rounding (int8) or as is (float32)."""
    if kind == KIND_U8:
        if scale is not None or offset is not None or quant is not None:
            _fail("scale/offset/quant apply to float32 or int8 outputs, not uint8")
        return np.zeros((channels, 2), np.float32)
    a = _per_channel(1.0 if scale is None else scale, "scale", channels)
    b = _per_channel(0.0 if offset is None else offset, "offset", channels)
    if kind == KIND_F32:
        if quant is not None:
            _fail("quant applies to int8 outputs only")
        return np.stack([a, b], axis=1).astype(np.float32)
    if quant is None or len(quant) != 2:
        _fail("int8 output needs quant=(scale, zero_point) of the model's input tensor")
    qs, zp = quant
    if not isinstance(qs, Real) or not math.isfinite(qs) or qs <= 0:
        _fail(f"quant scale must be a positive finite number, got {qs!r}")
    if not isinstance(zp, Integral) or not -128 <= zp <= 127:
        _fail(f"quant zero_point must be an integer in -128..127, got {zp!r}")
    if (np.abs(a / qs) * 255 + np.abs(b / qs) + abs(zp)).max() > 1e6:
        _fail("scale/offset/quant map levels beyond +-1e6 quantised steps")
    return np.stack([a / qs, b / qs + zp], axis=1).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _matrix(fmt: str, color: str) -> np.ndarray:
    """int16 [C, 4] colour matrix: Q13 coefficients on Q7 inputs (the filtered planes)
    and a Q4 constant; level = clamp((sum_k mulhs(x_k, m_k) + m_3) >> 4, 0, 255) where
    mulhs(a, b) = (a * b) >> 16.  The constant holds the offset, +0.5 level for rounding and
    the mean loss of the truncating products (0.5/16 level each)."""
    if fmt in ("I420", "NV12"):
        rgb = BT601_LIMITED.copy()
    else:
        rgb = np.eye(3, 4) if fmt == "RGB" else np.eye(3, 4)[::-1]
    if color == "gray":
        m = (LUMA_WEIGHTS @ rgb)[None, :]
    else:
        m = rgb if color == "rgb" else rgb[::-1]
    coef = np.rint(np.asarray(m)[:, :3] * (1 << M_FRAC))
    products = (coef != 0).sum(axis=1)
    const = np.rint((np.asarray(m)[:, 3] + 0.5) * (1 << OUT_FRAC) + 0.5 * products)
    out = np.concatenate([coef, const[:, None]], axis=1).astype(np.int16)
    out.setflags(write=False)           # cached and shared between calls
    return out


def _content(crop: Rect, ow: int, oh: int, letterbox: bool) -> Rect:
    if not letterbox:
        return Rect(0, 0, ow, oh)
    s = min(ow / crop.w, oh / crop.h)
    cw = min(ow, max(1, round(crop.w * s)))
    ch = min(oh, max(1, round(crop.h * s)))
    return Rect((ow - cw) // 2, (oh - ch) // 2, cw, ch)


def _pad(out3: np.ndarray, content: Rect, affine: np.ndarray, kind: int, level: int) -> None:
    """Fill the letterbox bars with ``level`` mapped like an image level."""
    if content.w == out3.shape[1] and content.h == out3.shape[0]:
        return
    if kind == KIND_U8:
        pixel = np.full(out3.shape[2], level, np.uint8)
    else:
        val = affine[:, 0] * np.float32(level) + affine[:, 1]
        if kind == KIND_I8:
            val = np.floor(np.clip(val, -128, 127) + np.float32(128.5)) - 128
        pixel = val.astype(out3.dtype)
    x1, y1 = content.x + content.w, content.y + content.h
    out3[:content.y] = pixel
    out3[y1:] = pixel
    out3[content.y:y1, :content.x] = pixel
    out3[content.y:y1, x1:] = pixel


# ----------------------------------------------------------------------------- public API
def preprocess(frame, fmt: str, out: np.ndarray, *, crop=None, letterbox: bool = False,
               color: str = "rgb", scale=None, offset=None, quant=None, pad: int = 0,
               width: int | None = None) -> PreprocessInfo:
    """Crop, resize and colour-convert ``frame`` into ``out`` in one pass; return the mapping.

    ``frame``: I420/NV12 as one uint8 array (height*3/2, stride) -- picamera2's YUV420 layout,
    ``width`` in pixels when the rows are padded (default: the stride) -- or as a tuple of
    planes ``(y, u, v)`` / ``(y, uv)``; RGB/BGR as (height, width, 3) uint8.  Strided and
    read-only arrays are accepted.  ``fmt``: "I420", "NV12", "RGB" or "BGR".
    ``out``: C-contiguous (H, W, C) or (1, H, W, C) array, uint8 (levels 0..255), float32
    (``scale * level + offset``, per channel allowed) or int8 (``quant=(scale, zero_point)`` of
    the model input: q = round((scale * level + offset) / qscale) + zero_point, saturated).
    ``crop``: (x, y, w, h) frame pixels, default the whole frame.  ``letterbox``: keep the
    aspect ratio and fill the bars with level ``pad`` (0..255).  ``color``: "rgb", "bgr" or
    "gray" (C = 1; BT.601 luma of the RGB result).
    """
    if fmt not in FORMATS:
        _fail(f"fmt must be one of {FORMATS}, got {fmt!r}")
    out3, channels = _out_layout(out, color)
    kind = _KINDS[out3.dtype]
    if not isinstance(pad, Integral) or not 0 <= pad <= 255:
        _fail(f"pad must be an integer level 0..255, got {pad!r}")
    affine = _affine(kind, channels, scale, offset, quant)
    if fmt in ("RGB", "BGR"):
        planes = (_rgb_rows(frame, fmt),)
        fw, fh = planes[0].shape[1] // 3, planes[0].shape[0]
    else:
        planes = _split_yuv(frame, fmt, width)
        fw, fh = planes[0].shape[1], planes[0].shape[0]
    r = _crop_rect(crop, fw, fh)
    content = _content(r, out3.shape[1], out3.shape[0], bool(letterbox))
    yuv = len(planes) == 4
    lx, cx = _axis_plan(r.x, r.w, content.w, fw // 2 if yuv else 0, False)
    ly, cy = _axis_plan(r.y, r.h, content.h, fh // 2 if yuv else 0, True)
    plan = Plan(lx, ly, cx, cy, _matrix(fmt, color), affine, kind)
    _pad(out3, content, affine, kind, int(pad))
    rows2d = out3.reshape(out3.shape[0], -1)
    target = rows2d[content.y:content.y + content.h,
                    content.x * channels:(content.x + content.w) * channels].view(np.uint8)
    if yuv:
        _kernel.run_yuv(planes[0], planes[1], planes[2], planes[3], plan, target)
    else:
        _kernel.run_rgb(planes[0], plan, target)
    return PreprocessInfo(r, content, r.w / content.w, r.h / content.h)
