"""Render a credential as a QR code (zxing-cpp writes the symbol, Pillow the PNG).

Example::

    write_qr_png("delivery.png", text, scale=8)      # ~ 8 px per module + quiet zone
    gray = qr_gray(text, scale=4)                    # (H, W) uint8 for tests and the bench
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image

from storeedge.doorkeys import write_atomic


def qr_gray(text: str, *, scale: int = 4, quiet_modules: int = 4) -> np.ndarray:
    """The QR symbol for ``text`` as a grey uint8 image (0 = dark), with a quiet zone."""
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    img = np.asarray(barcode.to_image(scale=scale, add_quiet_zones=False), dtype=np.uint8)
    pad = quiet_modules * scale
    return np.pad(img, pad, constant_values=255)


def write_qr_png(path: str | Path, text: str, *, scale: int = 8) -> tuple[int, int]:
    """Write ``text`` as a PNG QR code atomically; returns (width, height) in pixels."""
    img = Image.fromarray(qr_gray(text, scale=scale), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    write_atomic(path, buf.getvalue())
    return img.size


def paste_into_frame(symbol: np.ndarray, size: tuple[int, int] = (640, 480), *,
                     at: tuple[int, int] = (100, 60), background: int = 128) -> np.ndarray:
    """A (H, W) grey camera-like frame of ``size`` (w, h) with ``symbol`` pasted at ``at``."""
    w, h = size
    frame = np.full((h, w), background, dtype=np.uint8)
    x, y = at
    sh, sw = symbol.shape
    frame[y:y + sh, x:x + sw] = symbol
    return frame
