"""read_barcodes / BarcodeReader on generated scan-zone frames: every retail format at several
sizes, angles and blur levels; door QR credentials and raw bytes; bad input."""
import math
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFilter

from storeedge.native import barcode as bcmod
from storeedge.native.barcode import Barcode, BarcodeReader, read_barcodes
from storeedge.native.barcode_synth import (RETAIL_SAMPLES, SceneParams, _paste,
                                            compose_scene, door_credential, render_code)
from storeedge.native.exc import NativeInputError
from storeedge.native.locate import LocateParams

FRAME = (720, 1280)


def _scene(codes, seed, module, angle, blur, **kw):
    settings = dict(size=FRAME, module_px=(module, module), angle_deg=(angle, angle),
                    perspective=0.03, contrast=(0.6, 0.8), blur_px=(blur, blur),
                    noise_sigma=(2, 2), glare_prob=0, clutter=8)
    params = SceneParams(**{**settings, **kw})
    return compose_scene(codes, np.random.default_rng(seed), params)


def _seed(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def _found(reads: list[Barcode], truth, tol_px: float = 40.0) -> bool:
    """A read with the truth's text whose centre is within tol of the truth's centre."""
    return any(r.text == truth.text and math.dist(r.center, truth.center) < tol_px
               for r in reads)


# module px, motion blur px: up to half a module (heavier blur: see docs/barcode.md)
SIZES_BLUR = [(2, 0.0), (2, 1.0), (3, 0.0), (3, 1.5)]
ANGLES = [0, 30, 90, 135]
LONG_CODES = ("DataBarExpanded", "Code128")      # too long for 3 px modules in 1280 px


@pytest.mark.parametrize("text,fmt", RETAIL_SAMPLES, ids=[f for _, f in RETAIL_SAMPLES])
@pytest.mark.parametrize("module,blur", SIZES_BLUR, ids=[f"m{m}-b{b}" for m, b in SIZES_BLUR])
def test_retail_formats_read_at_sizes_angles_blur(text, fmt, module, blur):
    if fmt in LONG_CODES and module > 2:
        module, blur = 2, min(blur, 1.0)
    misses = []
    for angle in ANGLES:
        frame, truths = _scene([(text, fmt)], _seed(text, module, angle, blur), module, angle,
                               blur)
        assert truths, "generator could not place the code"
        reads = read_barcodes(frame)
        if not _found(reads, truths[0]):
            misses.append(angle)
    assert not misses, f"{fmt} missed at angles {misses}"


def test_position_is_four_corners_in_frame_coordinates():
    frame, truths = _scene([("4006381333931", "EAN-13")], 7, 3, 30, 0.0)
    (read,) = read_barcodes(frame)
    assert len(read.position) == 4
    assert math.dist(read.center, truths[0].center) < 25
    xs = [p.x for p in read.position]
    ys = [p.y for p in read.position]
    assert 0 <= min(xs) and max(xs) < FRAME[1] and 0 <= min(ys) and max(ys) < FRAME[0]
    # the quad spans the bars: its long side is close to the symbol's width without quiet zone
    long_side = max(math.dist(read.position[0], read.position[1]),
                    math.dist(read.position[1], read.position[2]))
    assert 150 < long_side < 330


def test_several_codes_in_one_frame_each_read_once():
    codes = [("4006381333931", "EAN-13"), ("96385074", "EAN-8"), ("0123456", "UPC-E")]
    frame, truths = _scene(codes, 11, 2, 20, 0.0)
    reads = read_barcodes(frame, full_frame=True)       # candidates + full frame, merged
    assert len(truths) == 3
    for t in truths:
        assert _found(reads, t)
    assert len(reads) == len({(r.text, round(r.center.x / 50), round(r.center.y / 50))
                              for r in reads}) == 3


@pytest.mark.parametrize("seed", range(4))
def test_no_reads_on_empty_cluttered_frames(seed):
    frame, truths = compose_scene([], np.random.default_rng(1000 + seed))
    assert truths == []
    assert read_barcodes(frame) == []
    assert BarcodeReader(fallback_period=1).read(frame) == []


# --- dock door: QR credentials on a phone screen -------------------------------------------

@pytest.mark.parametrize("length", [120, 180, 250])
@pytest.mark.parametrize("angle", [0, 40])
def test_door_qr_credential_round_trip(length, angle):
    payload = door_credential(np.random.default_rng(length), length)
    frame, truths = _scene([(payload, "QRCode")], _seed(length, angle), 3, angle, 0.0)
    reads = read_barcodes(frame, formats="QRCode")
    assert [r.text for r in reads] == [payload]
    assert reads[0].raw == payload.encode("ascii") and reads[0].format == "QR Code"


def test_door_qr_raw_bytes_round_trip():
    payload = bytes(range(256))[::-1][:200]
    frame, _ = _scene([(payload, "QRCode")], 5, 3, 15, 0.0)
    (read,) = read_barcodes(frame, formats=["QRCode"])
    assert read.raw == payload
    assert read.content_type == "Binary"


def test_door_qr_inverted_phone_screen():
    """Dark-mode screens show light modules on dark: still read."""
    payload = door_credential(np.random.default_rng(9), 150)
    img = 255 - np.pad(render_code(payload, "QRCode", module_px=4), 40, constant_values=255)
    frame = np.full((480, 640), 40, np.uint8)
    frame[50:50 + img.shape[0], 100:100 + img.shape[1]] = img
    assert [r.text for r in read_barcodes(frame, formats="QRCode")] == [payload]



def test_door_qr_light_modules_on_grey_screen_with_dark_logo():
    """Light modules on a mid-grey screen, a dark logo beside them (a phone app's QR page):
    the dark logo must not decide what counts as dark (range from percentiles, not min/max),
    so the crop gets its inverted try."""
    payload = door_credential(np.random.default_rng(4), 120)
    code = render_code(payload, "QRCode", module_px=4)
    img = np.pad(np.where(code < 128, 246, 175).astype(np.uint8), 24, constant_values=175)
    img[:22, :40] = 35                                    # the logo, inside the quiet zone
    frame = np.full((480, 640), 175, np.uint8)
    frame[60:60 + img.shape[0], 150:150 + img.shape[1]] = img
    assert [r.text for r in read_barcodes(frame, formats="QRCode")] == [payload]
    crop = img[8:, 8:]
    assert bcmod._mostly_dark(crop)
    lo, hi = int(crop.min()), int(crop.max())                  # the min/max rule: not dark
    assert not 2 * np.count_nonzero(2 * crop.astype(np.int16) < lo + hi) > crop.size

# --- the stateful reader and the full-frame fallback ---------------------------------------

def test_reader_fallback_period_and_stats():
    frame, truths = _scene([("4006381333931", "EAN-13")], 3, 3, 0, 0.0)
    blind = LocateParams(min_energy=1e12)                # the localiser finds nothing
    reader = BarcodeReader(fallback_period=3, params=blind)
    found = [bool(reader.read(frame, t=float(i))) for i in range(7)]
    assert found == [True, False, False, True, False, False, True]
    st = reader.stats
    assert (st.frames, st.full_frame_passes, st.reads, st.fallback_only_reads) == (7, 3, 3, 3)


def test_reader_stamps_time_and_never_falls_back_with_period_0():
    frame, _ = _scene([("4006381333931", "EAN-13")], 3, 3, 0, 0.0)
    reader = BarcodeReader(formats="EAN-13", fallback_period=0)
    (read,) = reader.read(frame, t=12.5)
    assert read.t == 12.5 and not read.full_frame
    assert reader.stats.full_frame_passes == 0


def test_formats_restrict_results():
    frame, _ = _scene([("4006381333931", "EAN-13"), ("9638507", "EAN-8")], 21, 3, 0, 0.0)
    assert {r.format for r in read_barcodes(frame, formats="EAN-8")} == {"EAN-8"}
    assert read_barcodes(frame, formats="QRCode") == []


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.zeros((0, 0), np.uint8), np.zeros((0, 10), np.uint8),
                                 np.zeros((10, 10), np.float32), np.zeros((10, 10), np.uint16),
                                 np.zeros((10, 10), np.int8), np.zeros((10, 10, 3), np.uint8),
                                 np.zeros(10, np.uint8), [[0, 1], [2, 3]], None, "frame"])
def test_bad_frames_are_clear_errors(bad):
    with pytest.raises(NativeInputError):
        read_barcodes(bad)
    with pytest.raises(NativeInputError):
        BarcodeReader().read(bad)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (7, 7), (8, 8), (9, 300), (300, 9)])
def test_tiny_frames_give_no_reads(shape):
    assert read_barcodes(np.full(shape, 128, np.uint8)) == []
    assert BarcodeReader(fallback_period=1).read(np.zeros(shape, np.uint8)) == []


def test_non_contiguous_and_read_only_frames_read_the_same():
    frame, truths = _scene([("4006381333931", "EAN-13")], 3, 3, 30, 0.0)
    expected = [(r.text, r.center) for r in read_barcodes(frame)]
    assert expected and expected[0][0] == truths[0].text
    wide = np.zeros((frame.shape[0], frame.shape[1] * 2), np.uint8)
    wide[:, ::2] = frame
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    ro = frame.copy()
    ro.setflags(write=False)
    fortran = np.asfortranarray(frame)
    for variant in (strided, ro, fortran):
        assert [(r.text, r.center) for r in read_barcodes(variant)] == expected


@pytest.mark.parametrize("formats", ["NotAFormat", "", [], ["EAN-13", 42], 3.5])
def test_bad_formats_are_clear_errors(formats):
    with pytest.raises(NativeInputError):
        read_barcodes(np.zeros((64, 64), np.uint8), formats=formats)


@pytest.mark.parametrize("kw", [dict(max_candidates=-1), dict(max_candidates=1.5),
                                dict(max_candidates=10_000), dict(fallback_period=-2),
                                dict(fallback_period="3")])
def test_bad_reader_config_is_a_clear_error(kw):
    with pytest.raises(NativeInputError):
        BarcodeReader(**kw)


def test_item_key_on_non_gs1_content_is_a_clear_error():
    payload = door_credential(np.random.default_rng(2), 130)
    frame, _ = _scene([(payload, "QRCode")], 8, 3, 0, 0.0)
    (read,) = read_barcodes(frame)
    with pytest.raises(ValueError):
        read.item_key()


def test_parse_formats_accepts_names_and_zxing_values():
    import zxingcpp
    a = bcmod.parse_formats("EAN-13, QRCode")
    b = bcmod.parse_formats([zxingcpp.BarcodeFormat.EAN13, "QRCode"])
    assert set(a.all) == set(b.all)
    assert a.linear == (zxingcpp.BarcodeFormat.EAN13,)
    assert zxingcpp.BarcodeFormat.QRCode in a.matrix


def test_noisy_sensor_frames_still_read_and_stay_quiet():
    """Heavy sensor noise (sigma 10): the energy threshold follows the noise floor."""
    noisy = dict(noise_sigma=(10, 10))
    frame, truths = _scene([("4006381333931", "EAN-13"), ("9638507", "EAN-8")], 31, 3, 20,
                           0.0, **noisy)
    reads = read_barcodes(frame)
    assert all(_found(reads, t) for t in truths)
    empty, _ = _scene([], 32, 3, 0, 0.0, **noisy)
    assert read_barcodes(empty) == []
    from storeedge.native.locate import locate
    assert len(locate(empty, 8)) <= 2


def _filling(text, fmt, module, size=(720, 1280)):
    """A rendered code scaled up to fill most of a grey frame (wide modules, no room for
    flat cells), with mild noise."""
    img = render_code(text, fmt, module)
    h, w = img.shape
    s = min(0.95 * size[0] / h, 0.95 * size[1] / w)
    from PIL import Image
    big = np.asarray(Image.fromarray(img).resize((int(w * s), int(h * s)), Image.BILINEAR))
    frame = np.full(size, 250, np.uint8)
    y0, x0 = (size[0] - big.shape[0]) // 2, (size[1] - big.shape[1]) // 2
    frame[y0:y0 + big.shape[0], x0:x0 + big.shape[1]] = big
    noise = np.random.default_rng(module).normal(0, 2.0, size)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("text,fmt", [("4006381333931", "EAN-13"),
                                      ("(01)98898765432106(3202)012345(15)991231",
                                       "DataBarExpanded"),
                                      ("SED1-door-credential-0042", "QRCode"),
                                      ("(01)04012345678901(21)ABC", "DataMatrix")],
                         ids=["ean13", "databar-exp", "qr", "datamatrix"])
def test_code_filling_the_frame_is_read(text, fmt):
    """A phone held close to the camera or a label filling the item crop: modules 5-40 px,
    wider than a localiser cell (the reduced pyramid levels find them)."""
    frame = _filling(text, fmt, 2)
    reads = read_barcodes(frame)
    assert [r.text for r in reads] == [text]
    assert not reads[0].full_frame


def test_small_image_is_decoded_whole():
    img = np.pad(render_code("SED1", "QRCode", 2), 4, constant_values=255)
    assert min(img.shape) < bcmod.SMALL_FRAME_PX
    assert [r.text for r in read_barcodes(img)] == ["SED1"]


def test_join_linear_merges_pieces_end_to_end_only():
    from storeedge.native.locate import Candidate
    a = Candidate("linear", 100.0, 50.0, 120.0, 40.0, 0.0, 5.0)
    b = Candidate("linear", 260.0, 52.0, 120.0, 40.0, 0.02, 3.0)        # same axis, gap 40
    c = Candidate("linear", 180.0, 200.0, 120.0, 40.0, 0.0, 9.0)        # parallel, below
    d = Candidate("linear", 100.0, 50.0, 120.0, 40.0, math.pi / 2, 9.0)  # crossing
    (joined,) = bcmod.join_linear([a, b, c, d])
    assert joined.angle == a.angle and joined.score == a.score + b.score
    assert 40 - 1 <= joined.cx - 0.5 * joined.length <= 40 + 1          # a's left end
    assert 320 - 1 <= joined.cx + 0.5 * joined.length <= 320 + 1        # b's right end
    assert len(bcmod.join_linear([a, b, c, d], min_pieces=1)) == 3



def test_retry_boxes_keep_a_joined_groups_best_piece():
    """A code joined with a neighbouring texture box fails as the joined box: its best piece
    is retried on its own too, right after the group; every retry box is lengthened."""
    from storeedge.native.locate import Candidate
    code = Candidate("linear", 100.0, 50.0, 120.0, 40.0, 0.0, 7.0)
    texture = Candidate("linear", 260.0, 52.0, 120.0, 40.0, 0.02, 1.0)   # end to end with it
    other = Candidate("linear", 180.0, 200.0, 120.0, 40.0, 0.0, 5.0)     # alone, below
    boxes = bcmod.retry_boxes([code, texture, other])
    assert [b.score for b in boxes] == [8.0, 7.0, 5.0]
    assert boxes[1].center == code.center
    grow = 1.0 + 2.0 * bcmod.RETRY_EXTEND
    assert boxes[1].length == code.length * grow and boxes[2].length == other.length * grow
    assert [b.score for b in bcmod.retry_boxes([other])] == [5.0]

def test_tall_strip_keeps_at_most_strip_rows():
    from storeedge.native.locate import Candidate
    frame = np.random.default_rng(1).integers(0, 255, (600, 800), dtype=np.uint8)
    for angle in (0.0, math.pi / 2, 0.5):
        cand = Candidate("linear", 400.0, 300.0, 300.0, 250.0, angle, 1.0)
        crop = bcmod.crop_candidate(frame, cand, bcmod.TALL_STRIP_PX)
        assert crop.image.shape[0] <= bcmod.STRIP_ROWS
        # the last row maps back to the far side of the box (250 px of bar height)
        far = crop.to_frame @ (crop.image.shape[1] / 2, crop.image.shape[0] - 1, 1.0)
        assert math.dist(far, (400, 300)) > 90


@pytest.mark.parametrize("rows", [13, 16])
def test_thin_slice_of_a_code_is_read(rows):
    """A tight crop of a 1-D code (bars 4-5% of its length tall, in a white band on a noisy
    frame) is read; with the old shape floor (bars >= 10% of the length) it was not."""
    code = render_code("4006381333931", "EAN-13", 3)
    h, w = code.shape
    frame = np.clip(np.random.default_rng(rows).normal(128, 30, (480, 640)), 0, 255)
    frame = frame.astype(np.uint8)
    frame[200:200 + rows + 24, 100:100 + w + 24] = 255
    frame[212:212 + rows, 112:112 + w] = code[h // 3:h // 3 + rows]
    assert [b.text for b in read_barcodes(frame, "EAN-13")] == ["4006381333931"]
    old = LocateParams(min_aspect=0.1)
    assert read_barcodes(frame, "EAN-13", params=old) == []


def _striped_frame_with_small_qr(seed: int = 3) -> np.ndarray:
    """24 high-contrast striped patches (strong 1-D candidates, none a code) and one small,
    low-contrast QR code (45 grey levels, 3 px modules) below them."""
    rng = np.random.default_rng(seed)
    frame = rng.normal(128, 3, FRAME)
    xx = np.arange(160)
    for k in range(24):
        period = rng.uniform(5, 11)
        stripes = 128 + 100 * np.sign(np.sin(xx * 2 * np.pi / period + rng.uniform(0, 6)))
        y, x = 30 + 130 * (k // 6), 20 + 210 * (k % 6)
        frame[y:y + 70, x:x + 160] = stripes[None, :]
    qr = render_code("STORE-EDGE-DOOR-1234", "QRCode", 3)
    h, w = qr.shape
    frame[560:560 + h, 900:900 + w] = 150 - 45 * (qr < 128)
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_small_2d_code_is_not_crowded_out_by_striped_texture():
    """Each kind gets its share of the candidate budget: with a plain top-8 by score (share
    0, the old behaviour) the stripes take every slot and the QR code is never decoded."""
    frame = _striped_frame_with_small_qr()
    assert [b.text for b in read_barcodes(frame)] == ["STORE-EDGE-DOOR-1234"]
    assert read_barcodes(frame, params=LocateParams(kind_share=0.0)) == []


def _code_on_weave(text: str, fmt: str, module: int, margin: int) -> np.ndarray:
    """A small code (60 grey levels of contrast) on a light sticker ``margin`` px wide, in
    the middle of a woven texture 95 cells wide (too large to be one 2-D code), on a flat
    frame."""
    rng = np.random.default_rng(5)
    frame = np.full(FRAME, 128.0)
    weave = rng.integers(0, 2, (100, 150)).astype(np.uint8) * 255
    weave = Image.fromarray(weave).resize((760, 480), Image.NEAREST)
    frame[120:600, 260:1020] = 80 + 0.4 * np.asarray(weave.filter(ImageFilter.GaussianBlur(1)))
    code = render_code(text, fmt, module)
    h, w = code.shape
    y, x = 360 - h // 2, 640 - w // 2
    frame[y - margin:y + h + margin, x - margin:x + w + margin] = 200
    frame[y:y + h, x:x + w] = 200 - 60 * (code < 128)
    frame += rng.normal(0, 2, FRAME)
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("text,fmt,module,margin", [("STORE-EDGE-DOOR-1234", "QRCode", 3, 12),
                                                    ("DM 12345 ABCDE", "DataMatrix", 2, 16)])
def test_small_2d_code_bridged_to_a_texture_is_split_out(text, fmt, module, margin):
    """The dilation joins the code's cells to the weave's over the sticker's margin; the
    joined component is too large for one code, and the code is found as a piece of it.
    Without the split (its minimum piece size out of reach) the code is not read."""
    frame = _code_on_weave(text, fmt, module, margin)
    assert [b.text for b in read_barcodes(frame)] == [text]
    assert read_barcodes(frame, params=LocateParams(split_min_cells=10**6)) == []


def _fanned_code128(text: str, module: int, height: float, left_deg: float, right_deg: float,
                    seed: int = 1) -> tuple[np.ndarray, tuple[float, float]]:
    """A Code 128 label seen in perspective on a grey frame: its top edge level, its bars
    leaning ``left_deg`` at the left end and ``right_deg`` at the right end (the bottom
    corners shifted), ``height`` px tall.  Returns (frame, centre of the label px)."""
    img = render_code(text, "Code128", module)
    w = img.shape[1]
    x0, y0 = 200.0, 300.0
    dl, dr = (height * math.tan(math.radians(d)) for d in (left_deg, right_deg))
    quad = np.array([[x0, y0], [x0 + w, y0], [x0 + w + dr, y0 + height],
                     [x0 + dl, y0 + height]])
    canvas = np.full((720, 1280), 120.0)
    _paste(canvas, img, quad, (30.0, 220.0))
    canvas += np.random.default_rng(seed).normal(0.0, 3.0, canvas.shape)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), tuple(quad.mean(axis=0))


@pytest.mark.parametrize("left,right", [(30.0, 0.0), (-25.0, 5.0), (15.0, 0.0)])
@pytest.mark.parametrize("height", [30.0, 70.0])
def test_code_in_perspective_is_scanned_along_its_long_axis(left, right, height):
    """Bars fanned out by perspective (a label seen from the side): the mean gradient angle
    is not the code's axis, and scan lines at that angle leave a long, thin code before its
    end.  Read when the localiser follows the code's long axis, not without."""
    text = "STOREEDGE-0123456789"
    frame, centre = _fanned_code128(text, 2, height, left, right)
    reads = [r for r in read_barcodes(frame) if r.text == text]
    assert reads and math.dist(reads[0].center, centre) < 60
    off = LocateParams(shear_ratio=1e9)
    assert text not in [r.text for r in read_barcodes(frame, params=off)]
