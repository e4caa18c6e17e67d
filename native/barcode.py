"""Read barcodes and QR codes in camera frames: localise first, decode only there.

    >>> from storeedge.native.barcode import read_barcodes, BarcodeReader
    >>> for bc in read_barcodes(gray):               # gray: (H, W) uint8 Y plane
    ...     bc.text, bc.format, bc.position, bc.raw, bc.item_key().gtin14
    >>> reader = BarcodeReader(formats="EAN-13, UPC-A, QRCode", fallback_period=15)
    >>> reads = reader.read(gray, t=clock.monotonic())

:func:`storeedge.native.locate.locate` proposes oriented boxes; each box is cropped (a rotated
1-D code is resampled upright) and decoded by zxing-cpp restricted to the configured formats;
positions are mapped back to frame pixels and duplicates merged.  Failed 1-D boxes are retried
joined, longer and taller; while nothing is read, the search repeats on the frame reduced by 4
and 16 (codes with wide modules or filling the frame; see docs/barcode.md).
:class:`BarcodeReader` adds a periodic full-frame zxing-cpp pass, so a code the localiser
misses is not lost forever.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import zxingcpp
from PIL import Image

from storeedge.native import gs1
from storeedge.native.exc import NativeInputError
from storeedge.native.locate import Candidate, LocateParams, check_gray, locate, warp_affine

DEFAULT_FORMATS = ("EAN-13, EAN-8, UPC-A, UPC-E, DataBar, DataBarExpanded, DataBarLimited, "
                   "Code128, DataMatrix, QRCode")
_AXIS_TOLERANCE = math.radians(8)     # closer than this to 0/90 degrees: plain slice, no warp
MAX_STRIP_PX = 64                     # a 1-D crop keeps at most this many px of bar height
STRIP_ROWS = 64                       # ... in at most this many rows
TALL_STRIP_PX = 256                   # ... on the retry of a tall (stacked) or joined 1-D box
_JOIN_ANGLE = math.radians(6)         # pieces of one 1-D code: angles closer than this
RETRY_EXTEND = 0.25                   # a retried 1-D box grows by this x its length each end
MAX_FINER = 1                         # failed boxes of a reduced level tried finer
MAX_RETRIES = 2                       # retry crops decoded per frame and level
LEVEL_FACTORS = (4, 16)               # pyramid reductions searched after the frame itself
MIN_LEVEL_PX = 48                     # a reduction keeps at least this short side (px)
SMALL_FRAME_PX = 96                   # a smaller frame (short side, px) is decoded whole
DARK_RANGE_PCT = 5                    # percentiles (low, 100 - low) bounding a 2-D crop's range


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
    BarcodeFormat(s), an iterable of names/formats, or a :class:`FormatSet` (returned as
    is).  Unknown names: NativeInputError."""
    if isinstance(formats, FormatSet):
        return formats
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


def crop_candidate(gray: np.ndarray, cand: Candidate,
                   max_height: float = MAX_STRIP_PX) -> Crop | None:
    """Crop ``cand`` out of ``gray``.  A 2-D box is an axis-aligned slice; a 1-D box becomes
    an upright strip (bars vertical) covering at most ``max_height`` px of bar height in at
    most ``STRIP_ROWS`` rows (rows are skipped on a taller strip: bars do not change along
    their length): a slice or transposed slice near 0/90 degrees, else a bilinear resampling.
    None if the box is mostly off-frame."""
    if cand.kind == "matrix":
        return _slice(gray, cand.corners(), transpose=False)
    c, s = math.cos(cand.angle), math.sin(cand.angle)
    height = min(cand.height, max_height)
    off = abs(cand.angle) % (math.pi / 2)
    if min(off, math.pi / 2 - off) < _AXIS_TOLERANCE:
        strip = cand._replace(height=height)
        step = max(1, math.ceil(height / STRIP_ROWS))
        return _slice(gray, strip.corners(), transpose=abs(s) > abs(c), step=step)
    out_w, out_h = int(cand.length + 0.5), max(1, min(int(height + 0.5), STRIP_ROWS))
    step = height / out_h
    x0 = cand.cx - c * out_w / 2 + s * height / 2
    y0 = cand.cy - s * out_w / 2 - c * height / 2
    m = np.array([[c, -s * step, x0], [s, c * step, y0]])
    return Crop(warp_affine(gray, m, out_h, out_w), m)


def _slice(gray: np.ndarray, corners, transpose: bool, step: int = 1) -> Crop | None:
    """Axis-aligned crop of the corners' bounding box; ``step`` > 1 keeps every step-th row
    (every step-th column when ``transpose``: rows of the transposed crop)."""
    xs, ys = zip(*corners)
    h, w = gray.shape
    x0, x1 = max(int(min(xs)), 0), min(int(math.ceil(max(xs))), w)
    y0, y1 = max(int(min(ys)), 0), min(int(math.ceil(max(ys))), h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    if transpose:
        return Crop(np.ascontiguousarray(gray[y0:y1, x0:x1:step].T),
                    np.array([[0.0, float(step), x0], [1.0, 0.0, y0]]))
    img = gray[y0:y1:step, x0:x1]
    return Crop(img if step == 1 else np.ascontiguousarray(img),
                np.array([[1.0, 0.0, x0], [0.0, float(step), y0]]))


def _to_barcode(r, to_frame: np.ndarray, full_frame: bool) -> Barcode:
    pos = r.position
    pts = []
    for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left):
        x, y = to_frame @ (p.x, p.y, 1.0)
        pts.append(Point(float(x), float(y)))
    return Barcode(r.text, str(r.format), tuple(pts), bytes(r.bytes), r.content_type.name,
                   r.symbology_identifier, full_frame)


def _decode_candidate(level: "Level", cand: Candidate, fs: FormatSet,
                      max_height: float = MAX_STRIP_PX) -> list[Barcode]:
    """zxing-cpp on the crop of ``cand`` (in ``level.image`` px); positions in frame px.
    A 1-D retry crop (``max_height`` above ``MAX_STRIP_PX``) is also decoded at zxing-cpp's
    reduced resolutions: a blurred code with wide modules reads there."""
    fmts = fs.linear if cand.kind == "linear" else fs.matrix
    crop = crop_candidate(level.image, cand, max_height) if fmts is not None else None
    if crop is None:
        return []
    f = level.factor
    if (f, level.x0, level.y0) != (1, 0, 0):
        crop = crop._replace(to_frame=crop.to_frame * f + np.array(
            [[0, 0, level.x0 + (f - 1) / 2.0], [0, 0, level.y0 + (f - 1) / 2.0]]))
    matrix = cand.kind == "matrix"
    found = zxingcpp.read_barcodes(crop.image, formats=fmts, try_rotate=matrix,
                                   try_downscale=not matrix and max_height > MAX_STRIP_PX,
                                   try_invert=False)
    if not found and matrix and _mostly_dark(crop.image):
        found = zxingcpp.read_barcodes(255 - crop.image, formats=fmts, try_downscale=False,
                                       try_invert=False)
    return [_to_barcode(r, crop.to_frame, False) for r in found if r.valid]


def _mostly_dark(img: np.ndarray) -> bool:
    """True when most of a 2-D crop is darker than its mid-range: the quiet zone and half
    the modules of a light-on-dark code (phone dark mode, light modules on a grey screen)
    are dark.  The range runs from the 5th to the 95th percentile of a sample, so a dark
    logo or a glint does not move it.  Only such crops get the inverted second try, instead
    of zxing-cpp's try_invert on every crop."""
    step = 4 if img.size > 16384 else 2            # a few thousand px are enough
    cum = np.cumsum(np.bincount(img[::step, ::step].ravel(), minlength=256))
    n = int(cum[-1])
    k = n - 1
    lo_i, hi_i = (k * DARK_RANGE_PCT) // 100, k - (k * DARK_RANGE_PCT) // 100
    lo, hi = (int(np.searchsorted(cum, i, side="right")) for i in (lo_i, hi_i))
    dark = int(cum[(lo + hi - 1) // 2]) if lo + hi > 0 else 0    # px with 2 v < lo + hi
    return 2 * dark > n


def join_linear(cands: list[Candidate], max_angle: float = _JOIN_ANGLE,
                min_pieces: int = 2) -> list[Candidate]:
    """Boxes joining 1-D candidates that lie end to end on one axis: a code with wide
    modules, finder patterns or glare is often located as several pieces, none of which
    decodes alone.  Two pieces join when their angles differ by less than ``max_angle`` (rad),
    their centres lie within half a box height of each other's axis and the gap between them
    is below the longer piece's length.  Returns the boxes of groups of at least
    ``min_pieces`` pieces, in the axis of their best piece, scored by their sum."""
    return [_union_box(g) for g in _linear_groups(cands, max_angle) if len(g) >= min_pieces]


def _linear_groups(cands: list[Candidate], max_angle: float = _JOIN_ANGLE
                   ) -> list[list[Candidate]]:
    """The 1-D candidates grouped end to end (see :func:`join_linear`), singletons included."""
    lin = [c for c in cands if c.kind == "linear"]
    parent = list(range(len(lin)))
    for i, a in enumerate(lin):
        for j in range(i + 1, len(lin)):
            if _end_to_end(a, lin[j], max_angle):
                parent[_root(parent, j)] = _root(parent, i)
    groups: dict[int, list[Candidate]] = {}
    for i, c in enumerate(lin):
        groups.setdefault(_root(parent, i), []).append(c)
    return list(groups.values())


def retry_boxes(failed: list[Candidate]) -> list[Candidate]:
    """The boxes to retry after ``failed`` 1-D boxes, best score first: each group of pieces
    lying end to end joined, and a joined group's best piece on its own too (a joined box can
    take in a neighbouring texture and fail where the code alone reads), each longer by
    ``RETRY_EXTEND`` of its length at both ends."""
    boxes = []
    for group in _linear_groups(failed):
        boxes.append(_union_box(group))
        if len(group) > 1:
            boxes.append(max(group, key=lambda c: c.score))
    boxes.sort(key=lambda c: -c.score)
    return [c._replace(length=c.length * (1.0 + 2.0 * RETRY_EXTEND)) for c in boxes]


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        i = parent[i]
    return i


def _end_to_end(a: Candidate, b: Candidate, max_angle: float) -> bool:
    d = abs(a.angle - b.angle) % math.pi
    if min(d, math.pi - d) > max_angle:
        return False
    ux, uy = math.cos(a.angle), math.sin(a.angle)
    dx, dy = b.cx - a.cx, b.cy - a.cy
    along, across = dx * ux + dy * uy, -dx * uy + dy * ux
    gap = abs(along) - (a.length + b.length) / 2
    return abs(across) < 0.5 * max(a.height, b.height) and gap < max(a.length, b.length)


def _union_box(group: list[Candidate]) -> Candidate:
    best = max(group, key=lambda c: c.score)
    ux, uy = math.cos(best.angle), math.sin(best.angle)
    us, vs = [], []
    for c in group:
        for x, y in c.corners():
            us.append(x * ux + y * uy)
            vs.append(-x * uy + y * ux)
    uc, vc = (min(us) + max(us)) / 2, (min(vs) + max(vs)) / 2
    return best._replace(cx=uc * ux - vc * uy, cy=uc * uy + vc * ux,
                         length=max(us) - min(us), height=max(vs) - min(vs),
                         score=sum(c.score for c in group))


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


class Level(NamedTuple):
    """One scale of the frame: ``image`` is the frame (or its part from ``x0``, ``y0`` px)
    box-averaged over ``factor`` x ``factor`` px blocks (factor 1: the frame itself)."""

    image: np.ndarray
    factor: int
    x0: int = 0
    y0: int = 0


def pyramid(gray: np.ndarray, factors: tuple[int, ...] = LEVEL_FACTORS) -> Iterator[Level]:
    """The frame and its box-averaged reductions by each factor (cumulative, Pillow's
    ``reduce``) while the reduction keeps at least ``MIN_LEVEL_PX`` px on its short side:
    a code whose modules are wider than a localiser cell, or that fills the frame, is a
    normal-sized code at some level.  Lazy: a reduction is made only when asked for."""
    yield Level(gray, 1)
    img, done = None, 1
    for f in factors:
        if min(gray.shape) // f < MIN_LEVEL_PX:
            return
        src = Image.fromarray(gray) if img is None else img
        img = src.reduce(f // done)
        done = f
        yield Level(np.asarray(img), f)


def read_barcodes(gray: np.ndarray, formats=None, *, max_candidates: int = 8,
                  full_frame: bool = False,
                  params: LocateParams = LocateParams()) -> list[Barcode]:
    """Decode the codes in ``gray`` ((H, W) uint8, any layout or read-only).

    At each level of :func:`pyramid` (the frame, then, while nothing was read, reductions
    by 4 and 16 for wide modules and codes filling the frame), decodes the best localiser
    boxes not inside a box that already decoded (``max_candidates`` at full size, half as
    many on reductions), then retries at most ``MAX_RETRIES`` 1-D boxes that failed, joined,
    longer and taller (see :func:`_read_level`).  A frame smaller than ``SMALL_FRAME_PX`` on
    a side (no room for localiser cells) is decoded whole; ``max_candidates=0`` skips all of
    this.  ``full_frame=True`` adds a zxing-cpp pass over the whole frame.  Raises
    ``NativeInputError`` for a frame that is not a non-empty 2-D uint8 array or for unknown
    formats.
    """
    fs = parse_formats(formats)
    gray = check_gray(gray)
    if max_candidates > 0 and min(gray.shape) < SMALL_FRAME_PX:
        return merge(full_frame_pass(gray, fs))
    kinds = tuple(k for k, fm in (("linear", fs.linear), ("matrix", fs.matrix)) if fm)
    reads: list[Barcode] = []
    done: list[Candidate] = []                 # frame px boxes that decoded
    for level in pyramid(gray) if max_candidates > 0 else ():
        if reads and level.factor > 1:
            break                      # the frame's own scale read something: enough
        budget = max_candidates if level.factor == 1 else (max_candidates + 1) // 2
        cands = sorted(locate(level.image, budget, params, kinds),
                       key=lambda c: c.kind != "linear")
        reads.extend(_read_level(gray, level, cands, fs, done))
    if full_frame:
        reads.extend(full_frame_pass(gray, fs))
    return merge(reads)


def _read_level(frame: np.ndarray, level: Level, cands: list[Candidate], fs: FormatSet,
                done: list[Candidate]) -> list[Barcode]:
    """Decode a level's boxes, then retry its failed 1-D boxes: pieces lying end to end
    joined, each box longer by ``RETRY_EXTEND`` of its length at both ends (the refit can
    stop at a wide element or a finder pattern) and up to ``TALL_STRIP_PX`` tall (stacked
    codes).  On a reduced level, the best ``MAX_FINER`` failed boxes are also tried at half
    the reduction (modules too fine at this level)."""
    reads, failed = _decode_all(level, cands, fs, MAX_STRIP_PX, done)
    more, _ = _decode_all(level, retry_boxes(failed)[:MAX_RETRIES], fs, TALL_STRIP_PX, done)
    reads += more
    if level.factor >= 4:
        for cand in sorted(failed, key=lambda c: -c.score)[:MAX_FINER]:
            reads += _decode_finer(frame, _scaled(cand, level.factor), level.factor // 2,
                                   fs, done)
    return reads


def _decode_finer(frame: np.ndarray, box: Candidate, factor: int, fs: FormatSet,
                  done: list[Candidate]) -> list[Barcode]:
    """Decode ``box`` (frame px) from the frame reduced by ``factor`` around it only."""
    xs, ys = zip(*box.corners())
    h, w = frame.shape
    x0, x1 = max(int(min(xs)), 0), min(int(math.ceil(max(xs))), w)
    y0, y1 = max(int(min(ys)), 0), min(int(math.ceil(max(ys))), h)
    if x1 - x0 < 8 * factor or y1 - y0 < 8 * factor:
        return []
    sub = frame[y0:y1, x0:x1]
    img = np.asarray(Image.fromarray(np.ascontiguousarray(sub)).reduce(factor)) \
        if factor > 1 else sub
    off = (factor - 1) / 2.0
    local = box._replace(cx=(box.cx - x0 - off) / factor, cy=(box.cy - y0 - off) / factor,
                         length=box.length / factor, height=box.height / factor)
    found, _ = _decode_all(Level(img, factor, x0, y0), [local], fs, TALL_STRIP_PX, done)
    return found


def _scaled(c: Candidate, f: int, x0: int = 0, y0: int = 0) -> Candidate:
    """A level's box in frame px."""
    if (f, x0, y0) == (1, 0, 0):
        return c
    off = (f - 1) / 2.0
    return c._replace(cx=c.cx * f + off + x0, cy=c.cy * f + off + y0, length=c.length * f,
                      height=c.height * f)


def _decode_all(level: Level, cands: list[Candidate], fs: FormatSet, max_height: float,
                done: list[Candidate]):
    """Decode each box not inside one that already decoded (``done``, frame px, is
    extended).  Returns (reads, boxes that did not decode)."""
    reads: list[Barcode] = []
    failed: list[Candidate] = []
    for cand in cands:
        framed = _scaled(cand, level.factor, level.x0, level.y0)
        if any(_inside_box(framed.center, box) for box in done):   # e.g. texture at bar ends
            continue
        found = _decode_candidate(level, cand, fs, max_height)
        if found:
            done.append(framed)
            reads.extend(found)
        else:
            failed.append(cand)
    return reads, failed


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
