"""Read barcodes and QR codes in camera frames: localise first, decode only there.

    >>> from storeedge.native.barcode import read_barcodes, BarcodeReader
    >>> for bc in read_barcodes(gray):               # gray: (H, W) uint8 Y plane
    ...     bc.text, bc.format, bc.position, bc.raw, bc.item_key().gtin14
    >>> reader = BarcodeReader(formats="EAN-13, UPC-A, QRCode", fallback_period=15)
    >>> reads = reader.read(gray, t=clock.monotonic())

:func:`storeedge.native.locate.locate` proposes oriented boxes; each box is cropped (a rotated
1-D code is resampled upright) and decoded by zxing-cpp restricted to the configured formats;
positions are mapped back to frame pixels and duplicates merged.  :class:`BarcodeReader` adds a
periodic full-frame zxing-cpp pass, so a code the localiser misses is not lost forever.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import numpy as np
import zxingcpp

from storeedge.native import gs1
from storeedge.native.exc import NativeInputError
from storeedge.native.locate import Candidate, LocateParams, check_gray, locate, warp_affine

DEFAULT_FORMATS = ("EAN-13, EAN-8, UPC-A, UPC-E, DataBar, DataBarExpanded, DataBarLimited, "
                   "Code128, DataMatrix, QRCode")
_AXIS_TOLERANCE = math.radians(8)     # closer than this to 0/90 degrees: plain slice, no warp
MAX_STRIP_PX = 64                     # a 1-D crop keeps at most this many px of bar height


class Point(NamedTuple):
    """A point in frame pixels."""

    x: float
    y: float


@dataclass(frozen=True)
class Barcode:
    """One decoded code.

    ``text``: zxing-cpp's text (GS1 content in HRI form "(01)..."); ``format``: zxing-cpp's
    format name ("EAN-13", "UPC-E", "QR Code", "Data Matrix", "DataBar"...); ``position``:
    four corners (x, y) px in frame coordinates (top-left, top-right, bottom-right,
    bottom-left of the symbol); ``raw``: the decoded bytes; ``content_type``: "Text", "GS1",
    "Binary"...; ``t``: the frame time given to :meth:`BarcodeReader.read` (s) or None;
    ``full_frame``: True when found by the full-frame fallback pass rather than a candidate.
    """

    text: str
    format: str
    position: tuple[Point, Point, Point, Point]
    raw: bytes
    content_type: str
    symbology_identifier: str
    full_frame: bool = False
    t: float | None = None

    @property
    def center(self) -> Point:
        """Centre of the four corners, px."""
        return Point(sum(p.x for p in self.position) / 4, sum(p.y for p in self.position) / 4)

    @property
    def size(self) -> float:
        """Longest diagonal of the position quad, px."""
        p = self.position
        return max(math.dist(p[0], p[2]), math.dist(p[1], p[3]))

    def item_key(self, scheme: gs1.VariableMeasureScheme | None = gs1.DEFAULT_SCHEME
                 ) -> gs1.ItemKey:
        """GS1 item key (see :func:`storeedge.native.gs1.normalize`); raises ``GS1Error`` for
        content that is not a GS1 item (e.g. a door credential QR)."""
        return gs1.normalize(self.text, self.format, scheme)


class FormatSet(NamedTuple):
    """Configured formats split for candidate kinds (tuples of zxing-cpp BarcodeFormat, or
    None when the configuration has no format of that kind)."""

    all: tuple
    linear: tuple | None
    matrix: tuple | None


def parse_formats(formats=None) -> FormatSet:
    """Formats from None (checkout + door defaults), a comma-separated string, a zxing-cpp
    BarcodeFormat(s), or an iterable of names/formats.  Unknown names: NativeInputError."""
    if formats is None:
        formats = DEFAULT_FORMATS
    if isinstance(formats, (zxingcpp.BarcodeFormat, zxingcpp.BarcodeFormats)):
        formats = ", ".join(str(f) for f in zxingcpp.barcode_formats_list(formats))
    elif not isinstance(formats, str):
        try:
            formats = ", ".join(str(f) for f in formats)
        except TypeError as exc:
            raise NativeInputError(f"formats must be a string or iterable: {formats!r}") from exc
    if not formats.strip(" ,"):
        raise NativeInputError("formats is empty: give at least one barcode format")
    try:
        parsed = zxingcpp.barcode_formats_list(zxingcpp.barcode_formats_from_str(formats))
    except ValueError as exc:
        raise NativeInputError(f"unknown barcode format in {formats!r}: {exc}") from exc
    if not parsed:
        raise NativeInputError("formats is empty: give at least one barcode format")
    linear_set = set(zxingcpp.barcode_formats_list(zxingcpp.AllLinear))
    return FormatSet(_join(parsed), _join([f for f in parsed if f in linear_set]),
                     _join([f for f in parsed if f not in linear_set]))


def _join(fmts: list) -> tuple | None:
    return tuple(fmts) if fmts else None


class Crop(NamedTuple):
    """A crop of the frame and the 2x3 affine map from crop (x, y) to frame (x, y) px."""

    image: np.ndarray
    to_frame: np.ndarray


def crop_candidate(gray: np.ndarray, cand: Candidate) -> Crop | None:
    """Crop ``cand`` out of ``gray``.  A 2-D box is an axis-aligned slice; a 1-D box becomes
    an upright strip (bars vertical, at most ``MAX_STRIP_PX`` tall): a slice or transposed slice
    near 0/90 degrees, else a bilinear resampling.  None if the box is mostly off-frame."""
    if cand.kind == "matrix":
        return _slice(gray, cand.corners(), transpose=False)
    c, s = math.cos(cand.angle), math.sin(cand.angle)
    height = min(cand.height, MAX_STRIP_PX)
    off = abs(cand.angle) % (math.pi / 2)
    if min(off, math.pi / 2 - off) < _AXIS_TOLERANCE:
        strip = cand._replace(height=height)
        return _slice(gray, strip.corners(), transpose=abs(s) > abs(c))
    out_w, out_h = int(cand.length + 0.5), int(height + 0.5)
    x0 = cand.cx - c * out_w / 2 + s * out_h / 2
    y0 = cand.cy - s * out_w / 2 - c * out_h / 2
    m = np.array([[c, -s, x0], [s, c, y0]])
    return Crop(warp_affine(gray, m, out_h, out_w), m)


def _slice(gray: np.ndarray, corners, transpose: bool) -> Crop | None:
    xs, ys = zip(*corners)
    h, w = gray.shape
    x0, x1 = max(int(min(xs)), 0), min(int(math.ceil(max(xs))), w)
    y0, y1 = max(int(min(ys)), 0), min(int(math.ceil(max(ys))), h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    if transpose:
        return Crop(np.ascontiguousarray(gray[y0:y1, x0:x1].T),
                    np.array([[0.0, 1.0, x0], [1.0, 0.0, y0]]))
    return Crop(gray[y0:y1, x0:x1], np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]))


def _to_barcode(r, to_frame: np.ndarray, full_frame: bool) -> Barcode:
    pos = r.position
    pts = []
    for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left):
        x, y = to_frame @ (p.x, p.y, 1.0)
        pts.append(Point(float(x), float(y)))
    return Barcode(r.text, str(r.format), tuple(pts), bytes(r.bytes), r.content_type.name,
                   r.symbology_identifier, full_frame)


def _decode_candidate(gray: np.ndarray, cand: Candidate, fs: FormatSet) -> list[Barcode]:
    fmts = fs.linear if cand.kind == "linear" else fs.matrix
    crop = crop_candidate(gray, cand) if fmts is not None else None
    if crop is None:
        return []
    matrix = cand.kind == "matrix"
    found = zxingcpp.read_barcodes(crop.image, formats=fmts, try_rotate=matrix,
                                   try_downscale=False, try_invert=False)
    if not found and matrix and _mostly_dark(crop.image):
        found = zxingcpp.read_barcodes(255 - crop.image, formats=fmts, try_downscale=False,
                                       try_invert=False)
    return [_to_barcode(r, crop.to_frame, False) for r in found if r.valid]


def _mostly_dark(img: np.ndarray) -> bool:
    """True when most of a 2-D crop is darker than its mid-range: the quiet zone and half
    the modules of a light-on-dark code (phone dark mode) are dark.  Only such crops get the
    inverted second try, instead of zxing-cpp's try_invert on every crop."""
    sample = img[::2, ::2]
    lo, hi = int(sample.min()), int(sample.max())
    return float(np.median(sample)) < (lo + hi) / 2.0


def full_frame_pass(gray: np.ndarray, fs: FormatSet) -> list[Barcode]:
    """zxing-cpp on the whole frame with the configured formats (its defaults otherwise)."""
    found = zxingcpp.read_barcodes(gray, formats=fs.all)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    return [_to_barcode(r, ident, True) for r in found if r.valid]


def merge(reads: Iterable[Barcode]) -> list[Barcode]:
    """Drop repeated reads of one symbol: same format family, bytes and overlapping place."""
    kept: list[Barcode] = []
    for bc in reads:
        if not any(_same_symbol(bc, k) for k in kept):
            kept.append(bc)
    return kept


def _inside_box(pt: tuple[float, float], box: Candidate) -> bool:
    """True when ``pt`` (x, y px) lies in the oriented box."""
    dx, dy = pt[0] - box.cx, pt[1] - box.cy
    c, s = math.cos(box.angle), math.sin(box.angle)
    return abs(dx * c + dy * s) <= box.length / 2 and abs(-dx * s + dy * c) <= box.height / 2


def _same_symbol(a: Barcode, b: Barcode) -> bool:
    if a.raw != b.raw or a.text != b.text:
        return False
    return math.dist(a.center, b.center) < 0.5 * max(a.size, b.size, 1.0)


def read_barcodes(gray: np.ndarray, formats=None, *, max_candidates: int = 8,
                  full_frame: bool = False,
                  params: LocateParams = LocateParams()) -> list[Barcode]:
    """Decode the codes in ``gray`` ((H, W) uint8, any layout or read-only).

    Decodes the best ``max_candidates`` localiser boxes; ``full_frame=True`` adds a
    zxing-cpp pass over the whole frame.  Raises ``NativeInputError`` for a frame that is not a
    non-empty 2-D uint8 array or for unknown formats.
    """
    fs = formats if isinstance(formats, FormatSet) else parse_formats(formats)
    gray = check_gray(gray)
    reads: list[Barcode] = []
    done: list[Candidate] = []                 # boxes that decoded
    kinds = tuple(k for k, fm in (("linear", fs.linear), ("matrix", fs.matrix)) if fm)
    cands = sorted(locate(gray, max_candidates, params, kinds),
                   key=lambda c: c.kind != "linear")
    for cand in cands:
        if any(_inside_box(cand.center, box) for box in done):   # e.g. texture at bar ends
            continue
        found = _decode_candidate(gray, cand, fs)
        if found:
            done.append(cand)
            reads.extend(found)
    if full_frame:
        reads.extend(full_frame_pass(gray, fs))
    return merge(reads)


class ReaderStats(NamedTuple):
    """Counters of a :class:`BarcodeReader`: frames read, full-frame passes, codes returned,
    codes found only by the full-frame pass (the localiser missed them)."""

    frames: int
    full_frame_passes: int
    reads: int
    fallback_only_reads: int


class BarcodeReader:
    """Stateful reader for a camera stream.

    ``formats``: see :func:`parse_formats`; ``max_candidates``: localiser boxes decoded per
    frame; ``fallback_period``: every this many frames (first frame included) a full-frame
    zxing-cpp pass runs too (0 = never).
    """

    def __init__(self, formats=None, *, max_candidates: int = 8, fallback_period: int = 15,
                 params: LocateParams = LocateParams()) -> None:
        if not isinstance(max_candidates, int) or not 0 <= max_candidates <= 256:
            raise NativeInputError(f"max_candidates must be an int 0..256, got {max_candidates!r}")
        if not isinstance(fallback_period, int) or fallback_period < 0:
            raise NativeInputError(f"fallback_period must be an int >= 0 frames, "
                                   f"got {fallback_period!r}")
        self.formats = parse_formats(formats)
        self.max_candidates = max_candidates
        self.fallback_period = fallback_period
        self.params = params
        self._stats = ReaderStats(0, 0, 0, 0)

    @property
    def stats(self) -> ReaderStats:
        """Counters since construction."""
        return self._stats

    def read(self, gray: np.ndarray, t: float | None = None) -> list[Barcode]:
        """Codes in this frame; ``t`` (s, e.g. monotonic time) is copied into each result."""
        reads = read_barcodes(gray, self.formats, max_candidates=self.max_candidates,
                              params=self.params)
        n, passes, extra = self._stats.frames, self._stats.full_frame_passes, 0
        if self.fallback_period and n % self.fallback_period == 0:
            passes += 1
            before = len(reads)
            reads = merge(reads + full_frame_pass(check_gray(gray), self.formats))
            extra = len(reads) - before
        if t is not None:
            reads = [_with_time(bc, t) for bc in reads]
        self._stats = ReaderStats(n + 1, passes, self._stats.reads + len(reads),
                                  self._stats.fallback_only_reads + extra)
        return reads


def _with_time(bc: Barcode, t: float) -> Barcode:
    from dataclasses import replace
    return replace(bc, t=float(t))
