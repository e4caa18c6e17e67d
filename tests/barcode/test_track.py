"""Tracking reads across frames into sightings."""
import numpy as np
import pytest

from storeedge.native.barcode import Barcode, BarcodeReader, Point
from storeedge.native.barcode_synth import SceneParams, render_code
from storeedge.native.barcode_track import BarcodeTracker
from storeedge.native.exc import NativeInputError


def _read(text, fmt, x, y, raw=None, size=40.0):
    h = size / 2
    pos = (Point(x - h, y - h), Point(x + h, y - h), Point(x + h, y + h), Point(x - h, y + h))
    return Barcode(text, fmt, pos, raw if raw is not None else text.encode(), "Text", "]E0")


def test_moving_code_is_one_sighting_with_a_track():
    tr = BarcodeTracker(max_gap_s=0.3, max_jump_px=120)
    for i in range(10):
        upd = tr.update([_read("4006381333931", "EAN-13", 100 + 60 * i, 300)], 0.033 * i)
        assert len(upd.started) == (1 if i == 0 else 0)
    (s,) = tr.active
    assert s.first_seen == 0.0 and s.last_seen == pytest.approx(0.297)
    assert [p.x for p in s.track] == [100 + 60 * i for i in range(10)]
    assert s.reads == 10 and s.key.gtin14 == "04006381333931"
    upd = tr.update([], 0.297 + 0.31)
    assert upd.ended == [s] and tr.active == []


def test_gap_longer_than_max_gap_starts_a_new_sighting():
    tr = BarcodeTracker(max_gap_s=0.2)
    tr.update([_read("96385074", "EAN-8", 200, 200)], 0.0)
    upd = tr.update([_read("96385074", "EAN-8", 200, 200)], 0.5)
    assert len(upd.ended) == 1 and len(upd.started) == 1
    assert upd.started[0].id != upd.ended[0].id


def test_same_item_via_different_symbologies_continues_one_sighting():
    tr = BarcodeTracker()
    tr.update([_read("0036000291452", "EAN-13", 300, 300)], 0.0)
    upd = tr.update([_read("(01)00036000291452(10)L1", "DataBar Expanded", 320, 300)], 0.05)
    assert upd.started == [] and len(upd.continued) == 1
    assert upd.continued[0].formats == {"EAN-13", "DataBar Expanded"}


def test_two_identical_items_far_apart_are_two_sightings():
    tr = BarcodeTracker(max_jump_px=150)
    ean = "4006381333931"
    reads = [_read(ean, "EAN-13", 100, 300), _read(ean, "EAN-13", 900, 300)]
    assert len(tr.update(reads, 0.0).started) == 2
    reads = [_read(ean, "EAN-13", 140, 300), _read(ean, "EAN-13", 940, 300)]
    upd = tr.update(reads, 0.03)
    assert upd.started == [] and len({s.id for s in upd.continued}) == 2
    for s in tr.active:
        assert abs(s.track[-1].x - s.track[0].x) == 40


def test_constant_velocity_prediction_keeps_fast_items():
    tr = BarcodeTracker(max_jump_px=100)
    xs = [100 + 90 * i for i in range(6)] + [100 + 90 * 5 + 180]   # last step 180 px
    for i, x in enumerate(xs):
        upd = tr.update([_read("96385074", "EAN-8", x, 300)], 0.033 * i)
        assert upd.started == ([] if i else upd.started)
    (s,) = tr.active                     # predicted 90 px ahead, so 180 px is a 90 px miss
    assert s.reads == 7


def test_door_qr_identity_is_raw_bytes():
    tr = BarcodeTracker()
    tr.update([_read("abc:DEF", "QR Code", 100, 100)], 0.0)
    upd = tr.update([_read("abc:DEF", "QR Code", 105, 100),
                     _read("abc:XYZ", "QR Code", 110, 100)], 0.1)
    assert len(upd.continued) == 1 and len(upd.started) == 1
    assert upd.continued[0].key is None


def test_bad_time_and_config_are_clear_errors():
    tr = BarcodeTracker()
    tr.update([], 5.0)
    with pytest.raises(NativeInputError):
        tr.update([], 4.0)
    with pytest.raises(NativeInputError):
        tr.update([], float("nan"))
    for kw in (dict(max_gap_s=0), dict(max_jump_px=-1), dict(max_points=1), dict(max_gap_s="1")):
        with pytest.raises(NativeInputError):
            BarcodeTracker(**kw)


def test_close_all_and_track_bound():
    tr = BarcodeTracker(max_points=3)
    for i in range(5):
        tr.update([_read("96385074", "EAN-8", 100 + i, 100)], float(i) * 0.01)
    (s,) = tr.active
    assert len(s.track) == 3 and s.reads == 5
    assert tr.close_all() == [s] and tr.active == []


def test_reader_and_tracker_on_frames_of_an_item_crossing():
    """Real frames: an EAN-13 label slides across a plain scan zone over 6 frames."""
    label = np.pad(render_code("4006381333931", "EAN-13", module_px=2), 12, constant_values=255)
    reader, tracker = BarcodeReader(fallback_period=0), BarcodeTracker(max_jump_px=200)
    rng = np.random.default_rng(0)
    for i in range(6):
        frame = np.clip(rng.normal(110, 3, (360, 640)), 0, 255).astype(np.uint8)
        x = 20 + 70 * i
        frame[100:100 + label.shape[0], x:x + label.shape[1]] = label
        tracker.update(reader.read(frame, t=i / 30), i / 30)
    (s,) = tracker.close_all()
    assert s.reads == 6 and s.text == "4006381333931"
    xs = [p.x for p in s.track]
    assert all(60 < b - a < 80 for a, b in zip(xs, xs[1:]))
    assert SceneParams().size == (720, 1280)
