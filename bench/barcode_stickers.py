"""Barcode reading on codes printed on stickers over real-photo backgrounds, ours vs zxing-cpp.

A second scene generator, independent of bench/barcode.py's: each frame is a 1280x720 mosaic
of the code-free real photos (``../shared/data/barcode-photos/falsepositives-1``) with one
code rendered by zxing-cpp (12 formats: retail, industrial and 2-D ones, Aztec and PDF417
too) on a light sticker: random module size (1-D 0.9-3 px, 2-D 1.5-5 px), bar height, ink
contrast (20-140 grey levels), light level, rotation (half any angle, half within 10
degrees), blur (sigma 0-1 px) and sensor noise (sigma 2).  The sticker's margin is 8
modules, so a small code sits close to the cloth, wood or print around it.  Plus empty
frames for false positives.  Ours: ``read_barcodes(gray, BarcodeFormat.AllReadable)``;
peer: ``zxingcpp.read_barcodes(gray)`` (defaults), interleaved, CPU time of the thread.

    .venv/bin/python bench/barcode_stickers.py [--quick] [--seed N] [--frames N]

Last line: one JSON object (``correct``, ``zxing_correct``, ``false_positives``,
``time_ratio`` (mean), ``median_time_ratio``, per format).  Skips with a message when the
photos are absent (``STOREEDGE_BARCODE_PHOTOS`` points elsewhere).
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import barcode_photos as bp                                   # noqa: E402

from storeedge.native.barcode import read_barcodes             # noqa: E402
from storeedge.native.locate import BACKEND                    # noqa: E402

F = zxingcpp.BarcodeFormat
CODES = ((F.UPCE, "01234565"), (F.EAN8, "96385074"), (F.Code128, "A1B2C3"),
         (F.EAN13, "4006381333931"), (F.DataBarLtd, "(01)15012345678907"),
         (F.DataBar, "(01)15012345678907"), (F.ITF, "12345678"), (F.Code39, "ABC12"),
         (F.QRCode, "https://ex.com/p?id=12345"), (F.DataMatrix, "DM 12345 ABCDE"),
         (F.Aztec, "AZ 12345"), (F.PDF417, "PDF 1234 5678"))
MATRIX = (F.QRCode, F.DataMatrix, F.Aztec, F.PDF417)
SIZE = (720, 1280)
NOISE_SIGMA = 2.0                                             # grey levels


@dataclass
class Scene:
    """One frame: the code's format name and text (None for an empty frame)."""

    format: str | None
    text: str | None
    gray: np.ndarray


@functools.cache
def _symbol(fmt) -> tuple[np.ndarray, str]:
    """zxing-cpp's rendering of the format's sample, 1 px per module, and its text (made
    once per format; callers only read the array)."""
    bc = zxingcpp.create_barcode(dict(CODES)[fmt], fmt)
    img = Image.fromarray(np.asarray(zxingcpp.write_barcode_to_image(bc, scale=1)))
    return np.asarray(img.convert("L")), bc.text


def _sticker(base: np.ndarray, fmt, rng: np.random.Generator):
    """(code in 0..1 with the sticker's margin, rotated; sticker mask) at a random scale."""
    matrix = fmt in MATRIX
    module = rng.uniform(1.5, 5.0) if matrix else rng.uniform(0.9, 3.0)
    hfrac = 1.0 if matrix else rng.uniform(0.2, 1.0)
    w = int(base.shape[1] * module)
    h = max(4, int(base.shape[0] * module * hfrac))
    margin = int(8 * module)
    code = np.pad(np.asarray(Image.fromarray(base).resize((w, h), Image.BILINEAR)), margin,
                  constant_values=255)
    angle = rng.uniform(-180, 180) if rng.random() < 0.5 else rng.uniform(-10, 10)
    turned = Image.fromarray(code).rotate(angle, resample=Image.BILINEAR, expand=True,
                                          fillcolor=255)
    mask = Image.fromarray(np.full(code.shape, 255, np.uint8)).rotate(angle, expand=True)
    return np.asarray(turned).astype(float) / 255, np.asarray(mask) > 128


def scene(backs: list[np.ndarray], fmt, rng: np.random.Generator) -> Scene | None:
    """A frame with one code of ``fmt`` (None: an empty frame); None if it does not fit."""
    frame = bp.background(backs, rng).astype(float)
    text = None
    if fmt is not None:
        base, text = _symbol(fmt)
        code, mask = _sticker(base, fmt, rng)
        ch, cw = code.shape
        if ch >= SIZE[0] - 20 or cw >= SIZE[1] - 20:
            return None
        contrast, light = rng.uniform(20, 140), rng.uniform(110, 235)
        y, x = rng.integers(0, SIZE[0] - ch), rng.integers(0, SIZE[1] - cw)
        region = frame[y:y + ch, x:x + cw]
        region[mask] = (light - contrast * (1 - code))[mask]
    blur = rng.uniform(0, 1.0)
    img = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))
    if blur > 0.2:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(img).astype(float) + rng.normal(0, NOISE_SIGMA, SIZE)
    return Scene(str(fmt) if fmt is not None else None, text,
                 np.clip(noisy, 0, 255).astype(np.uint8))


def make_scenes(backs: list[np.ndarray], n: int, empty: int, seed: int) -> list[Scene]:
    """``n`` frames cycling through the formats, then ``empty`` code-free frames."""
    rng = np.random.default_rng(seed)
    out: list[Scene] = []
    k = 0
    while len(out) < n:
        s = scene(backs, CODES[k % len(CODES)][0], rng)
        k += 1
        if s is not None:
            out.append(s)
    return out + [scene(backs, None, rng) for _ in range(empty)]


READERS = {"ours": lambda g: read_barcodes(g, F.AllReadable),
           "zxing": lambda g: zxingcpp.read_barcodes(g)}


def run(scenes: list[Scene]) -> dict[str, bp.Tally]:
    """Both readers on every frame, alternating who goes first (bench/barcode_photos.py's
    tally, keyed by format)."""
    tallies = {name: bp.Tally() for name in READERS}
    names = list(READERS)
    for i, sc in enumerate(scenes):
        for name in (names if i % 2 == 0 else names[::-1]):
            t0 = time.thread_time()
            reads = READERS[name](sc.gray)
            tally = tallies[name]
            tally.times.append(time.thread_time() - t0)
            if sc.text is None:
                tally.false_positives += len(reads)
            elif any(r.text == sc.text for r in reads):
                tally.correct[sc.format] = tally.correct.get(sc.format, 0) + 1
    return tallies


def summarise(scenes: list[Scene], t: dict[str, bp.Tally]) -> dict:
    """The JSON figures."""
    formats = sorted({s.format for s in scenes if s.format})
    ours, peer = t["ours"], t["zxing"]
    return {
        "backend": BACKEND, "frames": len(scenes),
        "empty_frames": sum(s.format is None for s in scenes),
        "correct": sum(ours.correct.values()), "zxing_correct": sum(peer.correct.values()),
        "false_positives": ours.false_positives,
        "zxing_false_positives": peer.false_positives,
        "time_ratio": round(statistics.fmean(ours.times) / statistics.fmean(peer.times), 4),
        "median_time_ratio": round(statistics.median(ours.times)
                                   / statistics.median(peer.times), 4),
        "zxing_ms": round(1000 * statistics.fmean(peer.times), 2),
        "formats": {f: {"frames": sum(s.format == f for s in scenes),
                        "ours": ours.correct.get(f, 0), "zxing": peer.correct.get(f, 0)}
                    for f in formats},
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="120 frames with codes, 10 empty")
    ap.add_argument("--frames", type=int, default=None, help="frames with a code (480)")
    ap.add_argument("--seed", type=int, default=20261206)
    args = ap.parse_args(argv)
    root = bp.photos_dir()
    if not (root / "falsepositives-1").is_dir():
        print(f"skipped: real photos for backgrounds not found at {root} (set {bp.ENV})")
        print(json.dumps({"skipped": f"no photos at {root}"}))
        return
    n = args.frames if args.frames is not None else (120 if args.quick else 480)
    scenes = make_scenes(bp.load_backgrounds(root / "falsepositives-1"), n,
                         10 if args.quick else 40, args.seed)
    run(scenes[:3])                                              # warm-up
    out = summarise(scenes, run(scenes))
    for f, v in out["formats"].items():
        print(f"{f:16s} {v['frames']:4d} frames  ours {v['ours']:4d}  zxing {v['zxing']:4d}")
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
