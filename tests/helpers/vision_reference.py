"""Exact float64 reference for frame preprocessing and a synthetic camera scene.

Written independently of storeedge.native.preprocess (no shared tables): chroma upsampled
bilinearly with MPEG-2 siting (co-sited with even luma columns, vertically centred between
luma rows), every full-resolution pixel converted with the BT.601 limited-range equations and
clipped to 0..255, then resampled per axis: box/area average (integral of the pixel values)
when the axis shrinks more than 2x, else bilinear with half-pixel centres and edge clamping.
Also used by bench/preprocess.py.
"""
from __future__ import annotations

import numpy as np

KR, KB = 0.299, 0.114
KG = 1.0 - KR - KB


def _bilinear_1d(values: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Sample ``values`` along ``axis`` at float ``coords`` (clamped to the ends)."""
    n = values.shape[axis]
    c = np.clip(coords, 0.0, n - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    f = c - i0
    shape = [1] * values.ndim
    shape[axis] = -1
    f = f.reshape(shape)
    return np.take(values, i0, axis=axis) * (1 - f) + np.take(values, i1, axis=axis) * f


def upsample_chroma(plane: np.ndarray, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Chroma at luma pixels [y0, y0+h) x [x0, x0+w): sample j at luma x = 2j, y = 2j + 0.5."""
    p = plane.astype(np.float64)
    rows = _bilinear_1d(p, (np.arange(y0, y0 + h) - 0.5) / 2.0, axis=0)
    return _bilinear_1d(rows, np.arange(x0, x0 + w) / 2.0, axis=1)


def yuv_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """BT.601 limited range -> R'G'B' levels 0..255 (float64, clipped)."""
    yy = (y - 16.0) * 255.0 / 219.0
    pb = (cb - 128.0) * 255.0 / 224.0
    pr = (cr - 128.0) * 255.0 / 224.0
    r = yy + 2 * (1 - KR) * pr
    b = yy + 2 * (1 - KB) * pb
    g = (yy - KR * r - KB * b) / KG
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 255.0)


def resample_axis(img: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Area average when shrinking > 2x (exact integral), else bilinear (half-pixel)."""
    n = img.shape[axis]
    s = n / n_out
    if s > 2.0:
        cum = np.concatenate([np.zeros_like(np.take(img, [0], axis=axis)),
                              np.cumsum(img, axis=axis)], axis=axis)
        edges = np.arange(n_out + 1) * s
        integral = _bilinear_1d(cum, edges, axis)          # cumsum is piecewise linear
        return np.diff(integral, axis=axis) / s
    return _bilinear_1d(img, (np.arange(n_out) + 0.5) * s - 0.5, axis)


def content_size(cw: int, ch: int, ow: int, oh: int, letterbox: bool) -> tuple[int, int]:
    """Size of the image inside the output (letterbox keeps the aspect ratio)."""
    if not letterbox:
        return ow, oh
    s = min(ow / cw, oh / ch)
    return min(ow, max(1, round(cw * s))), min(oh, max(1, round(ch * s)))


def reference_yuv(y, u, v, crop, out_w: int, out_h: int) -> np.ndarray:
    """Exact RGB float64 [out_h, out_w, 3] of the crop (x, y, w, h) of I420 planes."""
    x0, y0, w, h = crop
    luma = y[y0:y0 + h, x0:x0 + w].astype(np.float64)
    rgb = yuv_to_rgb(luma, upsample_chroma(u, x0, y0, w, h), upsample_chroma(v, x0, y0, w, h))
    return resample_axis(resample_axis(rgb, out_h, 0), out_w, 1)


def reference_rgb(rgb, crop, out_w: int, out_h: int) -> np.ndarray:
    """Exact float64 resampling of an RGB crop."""
    x0, y0, w, h = crop
    img = rgb[y0:y0 + h, x0:x0 + w].astype(np.float64)
    return resample_axis(resample_axis(img, out_h, 0), out_w, 1)


# ----------------------------------------------------------------------------- synthetic scene
def rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-resolution BT.601 limited-range Y, Cb, Cr (float64) of R'G'B' levels."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    yy = KR * r + KG * g + KB * b
    y = 16 + yy * 219.0 / 255.0
    cb = 128 + (b - yy) / (2 * (1 - KB)) * 224.0 / 255.0
    cr = 128 + (r - yy) / (2 * (1 - KR)) * 224.0 / 255.0
    return y, cb, cr


def subsample_420(c: np.ndarray) -> np.ndarray:
    """4:2:0 chroma at MPEG-2 sites: horizontally [1, 2, 1]/4 around even columns, vertically
    the mean of the two rows it sits between."""
    pad = np.pad(c, ((0, 0), (1, 1)), mode="edge")
    h = (pad[:, 0:-2:2] + 2 * pad[:, 1:-1:2] + pad[:, 2::2]) / 4.0
    return (h[0::2] + h[1::2]) / 2.0


def scene_rgb(width: int, height: int, seed: int) -> np.ndarray:
    """A camera-like RGB scene: lit background gradient, coloured boxes and discs with soft
    edges, fine texture and sensor noise (float64 levels, mostly inside the gamut)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = rng.uniform(60, 190, 3)
    img = base + rng.uniform(-40, 40, 3) * (xx / width)[..., None] \
        + rng.uniform(-30, 30, 3) * (yy / height)[..., None]
    for _ in range(12):
        colour = rng.uniform(20, 235, 3)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rad = rng.uniform(0.03, 0.25) * min(width, height)
        if rng.random() < 0.5:
            d = np.maximum(np.abs(xx - cx), np.abs(yy - cy) * rng.uniform(0.5, 2))
        else:
            d = np.hypot(xx - cx, yy - cy)
        alpha = np.clip((rad - d) / rng.uniform(0.7, 3.0), 0, 1)[..., None]
        img = img * (1 - alpha) + colour * alpha
    stripes = 12 * np.sin(xx * rng.uniform(0.2, 1.3) + yy * rng.uniform(0.1, 0.9))
    img += stripes[..., None] * (rng.random(3) > 0.3)
    img += rng.normal(0, 3.0, img.shape)
    return np.clip(img, 0, 255)


def scene_i420(width: int, height: int, seed: int = 0) -> np.ndarray:
    """The scene as one I420 buffer (height*3/2, width) uint8."""
    y, cb, cr = rgb_to_yuv(scene_rgb(width, height, seed))
    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8)
              for p in (y, subsample_420(cb), subsample_420(cr))]
    return np.concatenate([planes[0].reshape(-1), planes[1].reshape(-1),
                           planes[2].reshape(-1)]).reshape(height * 3 // 2, width)


def split_i420(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, u, v) planes of a dense I420 buffer."""
    h = frame.shape[0] * 2 // 3
    w = frame.shape[1]
    flat = frame.reshape(-1)
    n = (h // 2) * (w // 2)
    y = flat[:h * w].reshape(h, w)
    u = flat[h * w:h * w + n].reshape(h // 2, w // 2)
    v = flat[h * w + n:h * w + 2 * n].reshape(h // 2, w // 2)
    return y, u, v


def i420_to_nv12(frame: np.ndarray) -> np.ndarray:
    """The same picture as an NV12 buffer."""
    y, u, v = split_i420(frame)
    uv = np.stack([u, v], axis=-1).reshape(u.shape[0], -1)
    return np.concatenate([y, uv], axis=0)
