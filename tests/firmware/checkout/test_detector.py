"""LiteRT palm detector: anchors, decoding, NMS, and the real model on rendered frames."""
from __future__ import annotations

import numpy as np
import pytest

from storeedge.drivers.camera.lane import make_script, scripted
from storeedge.drivers.camera.render import LaneRenderer
from storeedge.firmware.checkout.detector.ssd import (PALM_LITE, Decoded, decode, ssd_anchors,
                                                       weighted_nms)
from storeedge.firmware.checkout.exc import ModelError


def test_palm_anchor_layout():
    a = ssd_anchors(PALM_LITE)
    assert a.shape == (2016, 2)
    # stride 8: 24x24 cells, 2 anchors each; then stride 16 merged: 12x12 cells, 6 each
    assert np.allclose(a[0], a[1]) and np.allclose(a[0], [0.5 / 24, 0.5 / 24])
    assert np.allclose(a[2], [1.5 / 24, 0.5 / 24])
    assert np.allclose(a[1152], [0.5 / 12, 0.5 / 12]) and np.allclose(a[1157], a[1152])
    assert np.allclose(a[-1], [11.5 / 12, 11.5 / 12])


def test_decode_offsets_are_relative_to_anchor_and_scaled():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], np.float32)
    raw = np.zeros((2, 18), np.float32)
    raw[1, :4] = [19.2, -9.6, 38.4, 19.2]          # dx, dy, w, h in input px (192)
    raw[1, 4:6] = [0.0, -19.2]                     # first keypoint
    d = decode(raw, np.array([-5.0, 5.0]), anchors, 192, 0.5)
    assert d.boxes.shape == (1, 4)
    assert np.allclose(d.boxes[0], [0.75 + 0.1 - 0.1, 0.75 - 0.05 - 0.05,
                                    0.75 + 0.1 + 0.1, 0.75 - 0.05 + 0.05])
    assert np.allclose(d.keypoints[0, 0], [0.75, 0.65])
    assert d.scores[0] == pytest.approx(1 / (1 + np.exp(-5)))


def test_weighted_nms_merges_overlaps_and_keeps_separate():
    boxes = np.array([[0, 0, 1, 1], [0.1, 0, 1.1, 1], [3, 3, 4, 4]], np.float32)
    d = Decoded(boxes, np.array([0.9, 0.6, 0.7]), np.zeros((3, 7, 2)))
    out = weighted_nms(d, 0.3)
    assert len(out.scores) == 2 and out.scores[0] == pytest.approx(0.9)
    assert out.boxes[0][0] == pytest.approx(0.6 * 0.1 / 1.5)
    assert np.allclose(out.boxes[1], [3, 3, 4, 4])


def _hand_roi(script, t, side=104):
    hand = next(a for a in script.actors if a.kind == "hand" and a.path.at(t))
    x, y = hand.path.at(t)
    cx, cy = (x + hand.offset[0]) / 3, (y + hand.offset[1]) / 3
    x0 = int(min(max(0, cx - side / 2), 320 - side))
    y0 = int(min(max(0, cy - side / 2), 180 - side))
    return (x0, y0, side, side), (cx, cy)


def test_real_model_finds_the_hand(detector):
    s = scripted(4, ["reach"], "medium")
    r = LaneRenderer(s)
    hits = 0
    times = np.linspace(s.actors[-1].path.t[0] + 0.4, s.actors[-1].path.t[-1] - 0.4, 8)
    for t in times:
        roi, (cx, cy) = _hand_roi(s, t)
        dets = detector.detect(r.render(t)[1], roi)
        near = [d for d in dets if abs((d.x0 + d.x1) / 2 - cx) < 15
                and abs((d.y0 + d.y1) / 2 - cy) < 15]
        hits += bool(near)
        for d in near:
            wrist, knuckle = d.keypoints[0], d.keypoints[2]
            assert knuckle[1] < wrist[1]           # fingers point up in the rendered view
    assert hits >= 6


def test_real_model_is_quiet_on_empty_counter_and_boxes(detector):
    s = make_script(2, "easy", 1)
    r = LaneRenderer(s)
    _, lores = r.render(0.0)
    assert detector.detect(lores) == []
    assert detector.detect(lores, (100, 40, 120, 120)) == []


def test_missing_model_is_a_clear_error(tmp_path):
    from storeedge.firmware.checkout.detector.litert import LiteRTPalmDetector

    with pytest.raises(ModelError, match="models.fetch"):
        LiteRTPalmDetector(str(tmp_path / "nope.tflite"))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        LiteRTPalmDetector(str(bad), edgetpu="off")
