"""Render a :class:`~storeedge.drivers.camera.lane.LaneScript` into camera frames.

Main stream: luma at 960 x 540 (barcodes printed at 2 px per module, as a 4K sensor would see
a real label from 1 m); lores stream: 320 x 180 I420 (3x smaller). Printed barcodes are real
EAN-13 symbols made by zxing-cpp's encoder. Lighting drift, the shopper's shadow and sensor
noise follow the level.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from storeedge.drivers.camera.base import i420_from_rgb
from storeedge.drivers.camera.lane import BAG_START, MAIN_H, MAIN_W, PICK_END, Actor, LaneScript

SCALE = 3
LORES_W, LORES_H = MAIN_W // SCALE, MAIN_H // SCALE
SKIN = (224, 172, 140)


@functools.lru_cache(maxsize=256)
def barcode_image(code: str, module_px: float = 2.0) -> Image.Image:
    """The EAN-13 symbol for ``code`` as a greyscale image at ``module_px`` px/module with
    quiet zones (a fractional size is rendered at 4 px/module and resampled, as a lens and
    a coarser sensor would blur it)."""
    import zxingcpp

    bc = zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.EAN13)
    if float(module_px).is_integer():
        return Image.fromarray(np.asarray(bc.to_image(scale=int(module_px), add_quiet_zones=True,
                                                      add_hrt=False)).astype(np.uint8))
    big = Image.fromarray(np.asarray(bc.to_image(scale=4, add_quiet_zones=True,
                                                 add_hrt=False)).astype(np.uint8))
    size = (round(big.width * module_px / 4), round(big.height * module_px / 4))
    return big.resize(size, Image.BOX)


def _background() -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(7)
    base = np.full((MAIN_H, MAIN_W, 3), (128, 130, 134), np.float32)
    base += rng.normal(0, 3, (MAIN_H // 12 + 1, MAIN_W // 12 + 1, 1)).repeat(12, 0).repeat(
        12, 1)[:MAIN_H, :MAIN_W]
    x0, x1 = int(PICK_END * MAIN_W), int(BAG_START * MAIN_W)
    base[120:420, x0 + 20:x1 - 20] = (70, 74, 80)           # scanner glass
    base[:, x1:] += 18                                       # brighter bagging shelf
    rgb = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    return rgb.convert("L"), rgb.resize((LORES_W, LORES_H), Image.BILINEAR)


def _box(cx: float, cy: float, w: float, h: float, s: float = 1.0) -> list[float]:
    return [(cx - w / 2) / s, (cy - h / 2) / s, (cx + w / 2) / s, (cy + h / 2) / s]


def draw_hand(d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, colour) -> None:
    """An open hand seen from above, fingers pointing up; ``s`` is the palm width (px)."""
    d.ellipse(_box(cx, cy + s * 0.05, s, s), fill=colour)
    for dx, ln in ((-0.36, 0.75), (-0.12, 0.9), (0.12, 0.85), (0.34, 0.7)):
        x = cx + dx * s
        d.rounded_rectangle([x - s * 0.1, cy - s * 0.4 - ln * s, x + s * 0.1, cy - s * 0.3],
                            radius=max(1, int(s * 0.1)), fill=colour)
    d.rounded_rectangle([cx - s * 0.95, cy - s * 0.2, cx - s * 0.45, cy + s * 0.05],
                        radius=max(1, int(s * 0.1)), fill=colour)
    d.rectangle([cx - s * 0.35, cy + s * 0.4, cx + s * 0.35, cy + s * 1.3], fill=colour)


@functools.lru_cache(maxsize=8)
def hand_sprite(palm_px: float, mode: str = "RGB") -> Image.Image:
    """An anti-aliased, shaded hand (RGBA, or LA for ``mode="L"``) with palm width
    ``palm_px``; its centre is the palm centre."""
    ss, size = 4, int(palm_px * 3.2)
    big = Image.new("RGBA", (size * ss, size * ss), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    c = size * ss / 2
    dark = tuple(int(v * 0.75) for v in SKIN) + (255,)
    draw_hand(d, c, c, palm_px * ss * 1.06, dark)
    draw_hand(d, c, c, palm_px * ss, SKIN + (255,))
    for dx in (-0.24, 0.0, 0.24):                       # gaps between the fingers
        x = c + dx * palm_px * ss
        d.line([x, c - palm_px * ss * 1.25, x, c - palm_px * ss * 0.35], fill=dark, width=ss)
    small = big.resize((size, size), Image.LANCZOS).filter(ImageFilter.GaussianBlur(0.4))
    return small if mode == "RGB" else small.convert("LA")


@functools.lru_cache(maxsize=8)
def _sprite_pair(palm_px: float, mode: str) -> tuple[Image.Image, Image.Image]:
    sprite = hand_sprite(palm_px, mode)
    return sprite.convert(mode), sprite.getchannel("A")


class LaneRenderer:
    """Draws frames of one script: :meth:`render` (t in s) -> (main luma, lores I420)."""

    def __init__(self, script: LaneScript):
        self.script = script
        self.bg_main, self.bg_lores = _background()
        rng = np.random.default_rng(script.seed + 99)
        self.noise = (rng.normal(0, 1, (8, MAIN_H, MAIN_W)).astype(np.float32)
                      if script.level.noise > 0 else None)
        self._k = 0

    def render(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        main, lores = self.bg_main.copy(), self.bg_lores.copy()
        dm, dl = ImageDraw.Draw(main), ImageDraw.Draw(lores)
        shadows = []
        for actor in self.script.actors:
            pos = actor.path.at(t)
            if pos is None:
                continue
            cx, cy = pos[0] + actor.offset[0], pos[1] + actor.offset[1]
            if actor.kind == "shadow":
                shadows.append((cx, cy, actor.size))
                continue
            self._draw(actor, cx, cy, (main, dm), (lores, dl))
        y = np.asarray(main, np.float32)
        rgb = np.asarray(lores, np.float32)
        y, rgb = self._light(t, y, rgb, shadows)
        return np.clip(y, 0, 255).astype(np.uint8), i420_from_rgb(
            np.clip(rgb, 0, 255).astype(np.uint8))

    def _draw(self, a: Actor, cx: float, cy: float, main, lores) -> None:
        (mi, dm), (li, dl) = main, lores
        grey = int(0.299 * a.colour[0] + 0.587 * a.colour[1] + 0.114 * a.colour[2])
        w, h = a.size
        if a.kind == "hand":
            for img, (sprite, alpha), s in ((mi, _sprite_pair(90.0, "L"), 1),
                                            (li, _sprite_pair(90.0 / SCALE, "RGB"), SCALE)):
                img.paste(sprite, (int(cx / s - sprite.width / 2),
                                   int(cy / s - sprite.height / 2)), alpha)
        elif a.kind in ("produce",):
            dm.ellipse(_box(cx, cy, w, h * 0.85), fill=grey)
            dl.ellipse(_box(cx, cy, w, h * 0.85, SCALE), fill=a.colour)
        else:
            r = 6 if a.kind != "phone" else 14
            dm.rounded_rectangle(_box(cx, cy, w, h), radius=r, fill=grey)
            dl.rounded_rectangle(_box(cx, cy, w, h, SCALE), radius=max(1, r // SCALE),
                                 fill=a.colour)
            if a.kind == "phone":
                dm.rectangle(_box(cx, cy, w - 14, h - 30), fill=200)
                dl.rectangle(_box(cx, cy, w - 14, h - 30, SCALE), fill=(190, 200, 215))
            if a.code and a.code_up:
                self._label(a.code, cx, cy, mi, li)

    def _label(self, code: str, cx: float, cy: float, main: Image.Image, lores: Image.Image):
        img = barcode_image(code, self.script.level.module_px)
        main.paste(img, (int(cx - img.width / 2), int(cy - img.height / 2)))
        small = img.resize((img.width // SCALE, img.height // SCALE), Image.BILINEAR)
        lores.paste(small.convert("RGB"), (int((cx - img.width / 2) / SCALE),
                                           int((cy - img.height / 2) / SCALE)))

    def _light(self, t: float, y: np.ndarray, rgb: np.ndarray, shadows):
        amp, phase, period = self.script.lighting
        gain = 1.0 + amp * math.sin(2 * math.pi * t / period + phase)
        for cx, cy, (w, h) in shadows:
            self._shade(y, cx, cy, w, h, 1)
            self._shade(rgb, cx, cy, w, h, SCALE)
        gain *= self.script.level.brightness
        y *= gain
        rgb *= gain
        if self.noise is not None:
            self._k = (self._k + 1) % len(self.noise)
            y += self.noise[self._k] * self.script.level.noise
            sub = self.noise[self._k, ::SCALE, ::SCALE, None]
            rgb += sub[:LORES_H, :LORES_W] * self.script.level.noise
        return y, rgb

    @staticmethod
    def _shade(img: np.ndarray, cx, cy, w, h, s) -> None:
        """Darken an ellipse (a soft-edged body shadow) to 70 %."""
        hh, ww = img.shape[:2]
        x0, x1 = max(0, int((cx - w / 2) / s)), min(ww, int((cx + w / 2) / s))
        y0, y1 = max(0, int((cy - h / 2) / s)), min(hh, int((cy + h / 2) / s))
        if x0 >= x1 or y0 >= y1:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1]
        r = ((xx - cx / s) / (w / 2 / s)) ** 2 + ((yy - cy / s) / (h / 2 / s)) ** 2
        f = np.clip(0.7 + 0.3 * (r - 0.6) / 0.4, 0.7, 1.0)
        img[y0:y1, x0:x1] *= f if img.ndim == 2 else f[..., None]
