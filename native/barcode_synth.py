"""Synthetic scan-zone frames with barcodes, for tests and benches (numpy + zxing-cpp writer).

    >>> img = render_code("4006381333931", "EAN-13", module_px=2)      # uint8, white quiet zone
    >>> frame, truths = compose_scene([("4006381333931", "EAN-13")], np.random.default_rng(1))
    >>> truths[0].text, truths[0].corners                              # frame pixels

Scenes: cluttered background (shaded surfaces, boxes, lines, text-like marks, stripe patterns),
codes placed with rotation, perspective, ink/paper contrast, then whole-frame motion blur,
noise and glare.  Every random choice comes from the ``rng`` you pass (reproducible).
Truth ``text`` is the text zxing-cpp reports for the symbol (e.g. UPC-A as 13 digits).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import zxingcpp

from storeedge.native.exc import NativeInputError

_GS1_CAPABLE = ("Code 128", "Data Matrix", "QR Code")


class Truth(NamedTuple):
    """A code placed in a frame: zxing's text for it, its format name and the four corners
    (x, y) px of its rendered image (quiet zone included): TL, TR, BR, BL."""

    text: str
    format: str
    corners: tuple[tuple[float, float], ...]

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) px."""
        return (sum(p[0] for p in self.corners) / 4, sum(p[1] for p in self.corners) / 4)


@dataclass(frozen=True)
class SceneParams:
    """Ranges of a scene's random variation (each drawn uniformly per code or per frame)."""

    size: tuple[int, int] = (720, 1280)          # (H, W) px
    module_px: tuple[float, float] = (1.6, 3.5)  # px per module (2-D codes x1.5)
    angle_deg: tuple[float, float] = (-180.0, 180.0)  # rotation range
    perspective: float = 0.08                    # corner jitter, fraction of the code size
    contrast: tuple[float, float] = (0.35, 1.0)  # ink-paper difference, fraction of 255
    blur_px: tuple[float, float] = (0.0, 3.0)    # motion blur length
    noise_sigma: tuple[float, float] = (1.0, 6.0)  # grey levels
    glare_prob: float = 0.3
    clutter: int = 25                            # background objects


def _format(fmt) -> zxingcpp.BarcodeFormat:
    if isinstance(fmt, zxingcpp.BarcodeFormat):
        return fmt
    try:
        return zxingcpp.barcode_format_from_str(str(fmt))
    except ValueError as exc:
        raise NativeInputError(f"unknown barcode format {fmt!r}") from exc


def create(text, fmt) -> zxingcpp.Barcode:
    """zxing-cpp symbol for ``text`` (str or bytes); "(01)..." texts become GS1 where the
    format can carry GS1 (GS1-128, GS1 DataMatrix, GS1 QR)."""
    f = _format(fmt)
    gs1 = isinstance(text, str) and text.startswith("(") and str(f) in _GS1_CAPABLE
    try:
        return zxingcpp.create_barcode(text, f, gs1=True) if gs1 else \
            zxingcpp.create_barcode(text, f)
    except (ValueError, RuntimeError) as exc:
        raise NativeInputError(f"cannot encode {text!r} as {f}: {exc}") from exc


def render_code(text, fmt, module_px: int = 2) -> np.ndarray:
    """Black-on-white uint8 image of the symbol, ``module_px`` pixels per module, quiet zone
    included (linear codes are about 0.6x their width tall)."""
    if not isinstance(module_px, int) or not 1 <= module_px <= 40:
        raise NativeInputError(f"module_px must be an int 1..40, got {module_px!r}")
    bc = create(text, fmt)
    img = np.asarray(zxingcpp.write_barcode_to_image(bc, scale=module_px), dtype=np.uint8)
    linear = bc.format in zxingcpp.barcode_formats_list(zxingcpp.AllLinear)
    if linear and img.shape[0] < 0.3 * img.shape[1]:  # 1-D: taller bars, as real labels have
        reps = max(1, int(0.6 * img.shape[1] / img.shape[0] + 0.5))
        img = np.repeat(img, reps, axis=0)
    return np.ascontiguousarray(img)


def _homography(src, dst) -> np.ndarray:
    rows = []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(rows, dtype=np.float64))
    return vt[-1].reshape(3, 3) / vt[-1, -1]


def _paste(canvas: np.ndarray, img: np.ndarray, quad: np.ndarray, levels) -> None:
    """Warp ``img`` (0 = ink, 255 = paper) onto ``canvas`` (float) at ``quad`` (4x2 px)."""
    h, w = img.shape
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    hinv = np.linalg.inv(_homography(src, quad))
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    den = hinv[2, 0] * xx + hinv[2, 1] * yy + hinv[2, 2]
    sx = (hinv[0, 0] * xx + hinv[0, 1] * yy + hinv[0, 2]) / den - 0.5
    sy = (hinv[1, 0] * xx + hinv[1, 1] * yy + hinv[1, 2]) / den - 0.5
    inside = (sx >= -0.5) & (sx <= w - 0.5) & (sy >= -0.5) & (sy <= h - 0.5)
    ix = np.clip(np.floor(sx).astype(int), 0, w - 1)
    iy = np.clip(np.floor(sy).astype(int), 0, h - 1)
    ix1, iy1 = np.minimum(ix + 1, w - 1), np.minimum(iy + 1, h - 1)
    fx, fy = np.clip(sx - ix, 0, 1), np.clip(sy - iy, 0, 1)
    f = img.astype(np.float64) / 255.0
    val = (f[iy, ix] * (1 - fx) * (1 - fy) + f[iy, ix1] * fx * (1 - fy)
           + f[iy1, ix] * (1 - fx) * fy + f[iy1, ix1] * fx * fy)
    ink, paper = levels
    region = canvas[y0:y1, x0:x1]
    region[inside] = (ink + (paper - ink) * val)[inside]


def _background(rng: np.random.Generator, p: SceneParams) -> np.ndarray:
    h, w = p.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = rng.uniform(60, 190) + rng.uniform(-40, 40) * (xx / w) + rng.uniform(-40, 40) * (yy / h)
    canvas = base.astype(np.float64)
    for _ in range(p.clutter):
        _clutter_item(canvas, rng)
    return canvas


def _clutter_item(canvas: np.ndarray, rng: np.random.Generator) -> None:
    h, w = canvas.shape
    kind = rng.integers(0, 4)
    x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
    if kind == 0:                                   # box / package face
        bw, bh = rng.integers(30, 300, size=2)
        canvas[y:y + bh, x:x + bw] = rng.uniform(0, 255)
    elif kind == 1:                                 # line / shelf edge
        length, th = int(rng.integers(50, 600)), int(rng.integers(1, 5))
        if rng.random() < 0.5:
            canvas[y:y + th, x:x + length] = rng.uniform(0, 255)
        else:
            canvas[y:y + length, x:x + th] = rng.uniform(0, 255)
    elif kind == 2:                                 # printed text: rows of small glyph marks
        level = rng.uniform(0, 90)
        for row in range(int(rng.integers(1, 5))):
            cx = x
            for _ in range(int(rng.integers(5, 25))):
                gw, gh = int(rng.integers(2, 9)), int(rng.integers(7, 14))
                canvas[y + row * 18:y + row * 18 + gh, cx:cx + gw] = level
                cx += gw + int(rng.integers(2, 6))
    else:                                           # stripe pattern on packaging
        period, n = int(rng.integers(6, 30)), int(rng.integers(3, 10))
        level, sw = rng.uniform(0, 255), int(rng.integers(40, 200))
        for i in range(n):
            canvas[y + i * period:y + i * period + period // 2, x:x + sw] = level


def _place(rng, shape, img_shape, p: SceneParams, taken) -> np.ndarray | None:
    h, w = img_shape
    ang = math.radians(rng.uniform(*p.angle_deg))
    radius = 0.5 * math.hypot(h, w)
    for _ in range(50):
        cx = rng.uniform(radius, shape[1] - radius) if shape[1] > 2 * radius else None
        cy = rng.uniform(radius, shape[0] - radius) if shape[0] > 2 * radius else None
        if cx is None or cy is None:
            return None
        if all(math.hypot(cx - tx, cy - ty) > radius + tr for tx, ty, tr in taken):
            break
    else:
        return None
    taken.append((cx, cy, radius))
    c, s = math.cos(ang), math.sin(ang)
    pts = []
    for x, y in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        jx, jy = rng.uniform(-p.perspective, p.perspective, 2) * (w, h)
        pts.append((cx + c * (x + jx) - s * (y + jy), cy + s * (x + jx) + c * (y + jy)))
    return np.array(pts, np.float64)


def _finish(canvas: np.ndarray, rng: np.random.Generator, p: SceneParams) -> np.ndarray:
    blur = rng.uniform(*p.blur_px)
    if blur >= 1.0:
        ang = rng.uniform(0, math.pi)
        steps = int(math.ceil(blur)) + 1
        acc = np.zeros_like(canvas)
        for i in range(steps):
            t = blur * (i / (steps - 1) - 0.5)
            acc += np.roll(canvas, (int(round(t * math.sin(ang))), int(round(t * math.cos(ang)))),
                           axis=(0, 1))
        canvas = acc / steps
    if rng.random() < p.glare_prob:
        h, w = canvas.shape
        gx, gy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(40, 200)
        yy, xx = np.ogrid[0:h, 0:w]
        spot = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / r ** 2)
        canvas = canvas + rng.uniform(60, 160) * spot
    canvas = canvas + rng.normal(0, rng.uniform(*p.noise_sigma), canvas.shape)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


def compose_scene(codes: Sequence, rng: np.random.Generator,
                  params: SceneParams = SceneParams()) -> tuple[np.ndarray, list[Truth]]:
    """A (H, W) uint8 frame with ``codes`` ((text, format) pairs; [] for an empty frame)
    composited into clutter.  Returns (frame, truths); a code that cannot be placed without
    overlap (frame full) is left out of both."""
    canvas = _background(rng, params)
    taken: list = []
    truths = []
    for text, fmt in codes:
        bc = create(text, fmt)
        lo, hi = params.module_px
        mod = rng.uniform(lo, hi) * (1.5 if str(bc.format) in ("QR Code", "Data Matrix") else 1)
        img = render_code(text, fmt, module_px=1)
        size = (int(img.shape[0] * mod + 0.5), int(img.shape[1] * mod + 0.5))
        quad = _place(rng, params.size, size, params, taken)
        if quad is None:
            continue
        contrast = rng.uniform(*params.contrast) * 255
        paper = rng.uniform(max(contrast, 150), 255)
        _paste(canvas, img, quad, (paper - contrast, paper))
        truths.append(Truth(bc.text, str(bc.format), tuple(map(tuple, quad))))
    return _finish(canvas, rng, params), truths


RETAIL_SAMPLES = (("4006381333931", "EAN-13"), ("03600029145", "UPC-A"), ("0123456", "UPC-E"),
                  ("9638507", "EAN-8"), ("0109501101530003", "DataBar"),
                  ("(01)09501101530003(3103)001250", "DataBarExpanded"),
                  ("(01)09501101530003(10)LOT42", "Code128"),
                  ("(01)09501101530003(17)261231(21)S123", "DataMatrix"))


def random_code(rng: np.random.Generator) -> tuple[str, str]:
    """A random (text, format) for a retail or door code with valid check digits."""
    kind = int(rng.integers(0, 9))
    digits = "".join(str(d) for d in rng.integers(0, 10, 12))
    if kind <= 2:
        return digits, "EAN-13"
    if kind == 3:
        return digits[:11], "UPC-A"
    if kind == 4:
        tail = str(int(rng.integers(1, 10))) + str(int(rng.integers(5, 10)))
        return "0" + digits[:4] + tail, "UPC-E"          # last digit 5-9: 5th digit not 0
    if kind == 5:
        return digits[:7], "EAN-8"
    if kind == 6:
        return "01" + _gtin14(digits), "DataBar"
    if kind == 7:
        return f"(01){_gtin14(digits)}(10){digits[:5]}", ("Code128", "DataMatrix")[digits[0] > "4"]
    return door_credential(rng), "QRCode"


def _gtin14(digits: str) -> str:
    from storeedge.native.gs1 import check_digit
    body = "0" + digits[:12]
    return body + check_digit(body)


DOOR_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:"


def door_credential(rng: np.random.Generator, length: int | None = None) -> str:
    """A dock-door credential-like text: 120-250 URL-safe characters (A-Z a-z 0-9 - _ . :)."""
    n = int(rng.integers(120, 251)) if length is None else length
    return "".join(DOOR_ALPHABET[i] for i in rng.integers(0, len(DOOR_ALPHABET), n))
