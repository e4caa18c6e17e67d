"""Benchmark: our reader vs zxing-cpp defaults on real barcode photos (zxing-cpp's test samples).

The photos are read from ``<repo>/../shared/data/barcode-photos/`` (or the folder named by
``STOREEDGE_BARCODE_PHOTOS``); one folder per set, each image beside its expected text
(``NAME.txt``) or bytes (``NAME.bin``); ``falsepositives-1/`` holds photos with no code.
The bench exits with a clear message (status 0, JSON ``{"skipped": ...}``) when they are absent.

Two runs, each interleaved (who goes first alternates per image), same image for both readers:

* **raw** -- every photo as it is (grey);
* **frames** -- every photo pasted at a random place and scale into a 1280x720 frame whose
  background is a mosaic of the ``falsepositives-1`` photos, plus sensor noise (sigma 2
  grey levels); plus ``--empty`` frames of background only and the ``falsepositives-1`` photos
  as they are (any read there is a false positive).

Readers: ``ours`` = ``storeedge.native.barcode.read_barcodes(gray, formats=ALL)`` (every
format zxing-cpp reads, like its defaults); ``zxing`` = ``zxingcpp.read_barcodes(gray)``.
A photo counts as read when one result matches its expected text: equal text, or the same
GTIN (UPC-A vs EAN-13 ``0...``, UPC-E vs its UPC-A expansion), or the same GS1 element string
with or without HRI parentheses, or equal bytes for a ``.bin``.  Times are CPU time of this
thread (``time.thread_time``: the machine is shared), reported as ratios of means (the
headline, it includes every fallback) and of medians.

    python bench/barcode_photos.py [--quick] [--empty N] [--seed S] [--sets a,b]
                                   [--formats QRCode] [--ours-formats default]

``--ours-formats default`` runs our reader with its own default formats (retail 1-D, Data
Matrix, QR: what the checkout lane runs) against zxing-cpp's defaults; the JSON says which
(``ours_formats``).

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image

from storeedge.native import gs1
from storeedge.native.barcode import parse_formats, read_barcodes
from storeedge.native.locate import BACKEND

REPO = Path(__file__).resolve().parent.parent
ENV = "STOREEDGE_BARCODE_PHOTOS"
FRAME_W, FRAME_H = 1280, 720
IMAGE_EXT = (".png", ".webp", ".jpg", ".jpeg", ".gif", ".bmp", ".pbm", ".pgm")
NOISE_SIGMA = 2.0                       # grey levels
ALL = parse_formats(zxingcpp.BarcodeFormat.AllReadable)
_HRI = re.compile(r"(\(\d{2,4}\)[^()]*)+")


def photos_dir() -> Path:
    """The photo folder: ``$STOREEDGE_BARCODE_PHOTOS`` or ``<repo>/../shared/data/...``."""
    env = os.environ.get(ENV)
    return Path(env) if env else REPO.parent / "shared" / "data" / "barcode-photos"


@dataclass
class Photo:
    """One image: its set (folder), name, grey pixels and expected text or bytes."""

    set: str
    name: str
    gray: np.ndarray
    text: str | None = None
    raw: bytes | None = None

    @property
    def family(self) -> str:
        """The set name without its number: ``ean13-1`` -> ``ean13``."""
        return self.set.rsplit("-", 1)[0]


def load_gray(path: Path) -> np.ndarray:
    """An image file as a (H, W) uint8 grey array (transparent pixels on white)."""
    with Image.open(path) as im:
        if im.mode in ("RGBA", "LA", "P") and ("transparency" in im.info or "A" in im.mode):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        return np.ascontiguousarray(np.asarray(im.convert("L"), dtype=np.uint8))


def load_set(folder: Path) -> list[Photo]:
    """The images of one set that have an expected ``.txt`` or ``.bin``, sorted by name."""
    out = []
    for img in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT):
        txt, binf = img.with_suffix(".txt"), img.with_suffix(".bin")
        if txt.exists():
            text = txt.read_text(encoding="utf-8", errors="replace").rstrip("\r\n")
            out.append(Photo(folder.name, img.name, load_gray(img), text=text))
        elif binf.exists():
            out.append(Photo(folder.name, img.name, load_gray(img), raw=binf.read_bytes()))
    return out


def load_backgrounds(folder: Path) -> list[np.ndarray]:
    """Every image of ``falsepositives-1`` (grey), any size."""
    return [load_gray(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXT]


def spellings(text: str) -> set[str]:
    """Every spelling of one item: the text, GS1 element strings without HRI parentheses,
    GTIN-14 for EAN/UPC numbers and for a UPC-E's UPC-A expansion."""
    out = {text}
    if _HRI.fullmatch(text):
        out.add(text.replace("(", "").replace(")", ""))
    if text.isdigit() and len(text) in (8, 12, 13):
        if gs1.is_valid_gtin(text):
            out.add(gs1.gtin14(text))
        if len(text) == 8:
            try:
                out.add(gs1.gtin14(gs1.expand_upce(text)))
            except gs1.GS1Error:
                pass
    return out


def matches(photo: Photo, result) -> bool:
    """True when a result (zxing-cpp's or ours: ``.text``, ``.bytes``/``.raw``) is the
    photo's expected content."""
    if photo.raw is not None:
        raw = getattr(result, "raw", None)
        raw = bytes(result.bytes) if raw is None else raw
        return raw == photo.raw
    return bool(spellings(result.text) & spellings(photo.text))


def _fit(img: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Scale ``img`` to cover (w, h) and crop a random window of that size."""
    ih, iw = img.shape
    s = max(w / iw, h / ih)
    nw, nh = max(w, int(round(iw * s))), max(h, int(round(ih * s)))
    big = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    x0, y0 = int(rng.integers(0, nw - w + 1)), int(rng.integers(0, nh - h + 1))
    return big[y0:y0 + h, x0:x0 + w]


def background(backs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A 1280x720 mosaic of two or four code-free photos."""
    usable = [b for b in backs if min(b.shape) >= 64]
    frame = np.empty((FRAME_H, FRAME_W), np.uint8)
    cols = int(rng.integers(1, 3))
    tiles = [(0, 0, FRAME_W // 2, FRAME_H), (FRAME_W // 2, 0, FRAME_W - FRAME_W // 2, FRAME_H)]
    if cols == 2:
        half = FRAME_H // 2
        tiles = [(x, y, w, hh) for x, _, w, _ in tiles for y, hh in ((0, half),
                                                                      (half, FRAME_H - half))]
    for x, y, w, h in tiles:
        frame[y:y + h, x:x + w] = _fit(usable[int(rng.integers(len(usable)))], w, h, rng)
    return frame


def paste(frame: np.ndarray, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paste ``img`` at a random scale (0.4..1x the largest that fits, at least 0.75x its
    own size when that fits) and place, then add sensor noise; returns a new frame."""
    ih, iw = img.shape
    smax = 0.95 * min(FRAME_W / iw, FRAME_H / ih)
    s = max(smax * float(rng.uniform(0.4, 1.0)), min(smax, 0.75))
    nw, nh = max(1, int(round(iw * s))), max(1, int(round(ih * s)))
    resample = Image.BILINEAR if s >= 1 else Image.BOX
    small = np.asarray(Image.fromarray(img).resize((nw, nh), resample))
    x0, y0 = int(rng.integers(0, FRAME_W - nw + 1)), int(rng.integers(0, FRAME_H - nh + 1))
    out = frame.copy()
    out[y0:y0 + nh, x0:x0 + nw] = small
    return add_noise(out, rng)


def add_noise(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise, ``NOISE_SIGMA`` grey levels."""
    noisy = frame.astype(np.float32) + rng.normal(0.0, NOISE_SIGMA, frame.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


FORMATS = {"ours": ALL, "zxing": None}      # --formats restricts both readers


def ours(gray: np.ndarray) -> list:
    """Our reader, every readable format (or ``--formats``)."""
    return read_barcodes(gray, FORMATS["ours"])


def zxing(gray: np.ndarray) -> list:
    """zxing-cpp with its defaults (``--formats``: restricted to those formats)."""
    if FORMATS["zxing"] is None:
        return zxingcpp.read_barcodes(gray)
    return zxingcpp.read_barcodes(gray, formats=FORMATS["zxing"])


READERS = {"ours": ours, "zxing": zxing}


@dataclass
class Tally:
    """Per reader: correct reads per family, false positives, CPU seconds per image (and
    per empty image)."""

    correct: dict = field(default_factory=dict)
    false_positives: int = 0
    times: list = field(default_factory=list)
    empty_times: list = field(default_factory=list)


def run_items(items, tallies: dict) -> None:
    """Each item is (photo or None for an empty image, grey image); both readers, alternating
    who goes first."""
    names = list(READERS)
    for i, (photo, gray) in enumerate(items):
        for name in (names if i % 2 == 0 else names[::-1]):
            t0 = time.thread_time()
            reads = READERS[name](gray)
            tallies[name].times.append(time.thread_time() - t0)
            tally = tallies[name]
            if photo is None:
                tally.false_positives += len(reads)
                tally.empty_times.append(tally.times[-1])
            elif any(matches(photo, r) for r in reads):
                tally.correct[photo.family] = tally.correct.get(photo.family, 0) + 1


def _ratio(a: list, b: list, fn) -> float:
    return round(fn(a) / max(fn(b), 1e-9), 4)


def summarise(photos, raw: dict, frames: dict, empty: int) -> dict:
    """The JSON figures."""
    families = sorted({p.family for p in photos})
    per = {f: {"photos": sum(p.family == f for p in photos),
               "raw": raw["ours"].correct.get(f, 0), "raw_zxing": raw["zxing"].correct.get(f, 0),
               "frames": frames["ours"].correct.get(f, 0),
               "frames_zxing": frames["zxing"].correct.get(f, 0)} for f in families}
    tot = lambda t: sum(t.correct.values())          # noqa: E731
    return {
        "backend": BACKEND, "photos": len(photos), "empty_frames": empty,
        "ours_formats": "all readable" if FORMATS["ours"] is ALL else
        ", ".join(str(f) for f in FORMATS["ours"].all),
        "raw_correct": tot(raw["ours"]), "raw_zxing_correct": tot(raw["zxing"]),
        "frames_correct": tot(frames["ours"]), "frames_zxing_correct": tot(frames["zxing"]),
        "raw_time_ratio": _ratio(raw["ours"].times, raw["zxing"].times, statistics.fmean),
        "frames_time_ratio": _ratio(frames["ours"].times, frames["zxing"].times,
                                    statistics.fmean),
        "frames_median_time_ratio": _ratio(frames["ours"].times, frames["zxing"].times,
                                           statistics.median),
        "frames_zxing_ms": round(1000 * statistics.fmean(frames["zxing"].times), 2),
        "empty_frames_time_ratio": _ratio(frames["ours"].empty_times,
                                          frames["zxing"].empty_times, statistics.fmean)
        if empty else None,
        "false_positives": raw["ours"].false_positives + frames["ours"].false_positives,
        "zxing_false_positives": raw["zxing"].false_positives + frames["zxing"].false_positives,
        "families": per,
    }


def build(root: Path, sets: list[str] | None, empty: int, seed: int):
    """(photos, raw items, frame items) for the run."""
    rng = np.random.default_rng(seed)
    backs = load_backgrounds(root / "falsepositives-1")
    names = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name != "falsepositives-1")
    photos = [p for n in names if not sets or n in sets for p in load_set(root / n)]
    raw = [(p, p.gray) for p in photos] + [(None, b) for b in backs]
    frames = [(p, paste(background(backs, rng), p.gray, rng)) for p in photos]
    frames += [(None, add_noise(background(backs, rng), rng)) for _ in range(empty)]
    order = rng.permutation(len(frames))
    return photos, raw, [frames[i] for i in order]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every 4th photo, 10 empty frames")
    ap.add_argument("--empty", type=int, default=None, help="empty frames (default 40)")
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    ap.add_argument("--formats", default="", help="restrict both readers, e.g. QRCode "
                    "(default: ours every readable format, zxing-cpp its defaults)")
    ap.add_argument("--ours-formats", default="", help="restrict our reader only, zxing-cpp "
                    "keeps its defaults; 'default' = the reader's own default formats (what "
                    "the checkout lane and the door run)")
    args = ap.parse_args(argv)
    if args.formats:
        fs = parse_formats(args.formats)
        FORMATS.update(ours=fs, zxing=fs.all)
    if args.ours_formats:
        FORMATS["ours"] = parse_formats(None if args.ours_formats == "default"
                                        else args.ours_formats)
    root = photos_dir()
    if not (root / "falsepositives-1").is_dir():
        print(f"skipped: real barcode photos not found at {root} (set {ENV})")
        print(json.dumps({"skipped": f"no photos at {root}"}))
        return
    empty = args.empty if args.empty is not None else (10 if args.quick else 40)
    photos, raw, frames = build(root, [s for s in args.sets.split(",") if s], empty, args.seed)
    if args.quick:
        keep = {id(p) for p in photos[::4]}
        photos = photos[::4]
        raw = [it for it in raw if it[0] is None or id(it[0]) in keep]
        frames = [it for it in frames if it[0] is None or id(it[0]) in keep]
    run_items(raw[:3], {n: Tally() for n in READERS})            # warm-up
    res_raw, res_frames = ({n: Tally() for n in READERS} for _ in range(2))
    run_items(raw, res_raw)
    run_items(frames, res_frames)
    out = summarise(photos, res_raw, res_frames, empty)
    for fam, v in out["families"].items():
        print(f"{fam:14s} {v['photos']:4d} photos  raw ours {v['raw']:4d} zxing "
              f"{v['raw_zxing']:4d}   frames ours {v['frames']:4d} zxing {v['frames_zxing']:4d}")
    sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
