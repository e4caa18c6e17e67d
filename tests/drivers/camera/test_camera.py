"""Camera seam: synthetic lane (determinism, truth, stalls), replay, self-test, picamera2."""
from __future__ import annotations

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from storeedge.drivers.camera import (CameraUnavailable, i420_from_rgb, open_camera,
                                      rgb_from_i420, self_test)
from storeedge.drivers.camera.lane import LEVELS, make_script
from storeedge.drivers.camera.replay import ReplayCamera, save_recording
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera
from storeedge.drivers.exc import UnknownBackend


def test_same_seed_same_frames_and_truth():
    a = SyntheticLaneCamera(make_script(11, "medium", 3), fps=10)
    b = SyntheticLaneCamera(make_script(11, "medium", 3), fps=10)
    fa, fb = [f for _, f in zip(range(25), a.frames())], [f for _, f in zip(range(25), b.frames())]
    assert all(np.array_equal(x.main, y.main) and np.array_equal(x.lores, y.lores)
               for x, y in zip(fa, fb))
    assert a.script.truth == b.script.truth and a.script.pos == b.script.pos
    c = make_script(12, "medium", 3)
    assert c.truth != a.script.truth


def test_truth_and_pos_log_are_consistent():
    for seed in range(6):
        s = make_script(seed, "hard", 8)
        scans = [p for p in s.pos if p.kind == "scan"]
        assert s.pos[0].kind == "txn_start" and s.pos[-1].kind == "txn_end"
        for t in s.truth:
            assert t.t_start < t.t_scan_in <= t.t_scan_out <= t.t_end
            if t.kind in ("skipped", "covered", "produce_skipped"):
                assert t.scanned == () and t.expect == "missed"
            if t.kind == "ticket_switch":
                assert t.scanned and t.scanned[0] not in t.codes and t.expect == "switch"
        lo, hi = LEVELS["hard"].latency
        assert all(0 < p.t < s.duration for p in scans)


def test_printed_barcodes_are_real_ean13():
    cam = SyntheticLaneCamera(make_script(3, "easy", 2), fps=10)
    item = next(a for a in cam.script.actors if a.kind == "item" and a.code_up)
    t = item.path.t[1]
    main, _ = cam.renderer.render(t)
    texts = {r.text for r in zxingcpp.read_barcodes(main)}
    assert item.code in texts


def test_stall_leaves_a_gap_in_timestamps():
    cam = SyntheticLaneCamera(make_script(1, "easy", 2), fps=10, stalls=[(1.0, 2.5)])
    ts = [f.t for f in cam.frames()]
    gaps = np.diff(ts)
    assert gaps.max() == pytest.approx(1.6, abs=0.01)
    assert not any(1.0 <= t < 2.5 for t in ts)


def test_i420_roundtrip_close():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 2, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(rgb[:1, :1], 4, 0), 4, 1)
    back = rgb_from_i420(i420_from_rgb(rgb))
    assert np.abs(back.astype(int) - rgb).max() <= 3


def test_replay_image_folder_and_recording(tmp_path):
    cam = SyntheticLaneCamera(make_script(2, "easy", 1), fps=10)
    frames = [f for _, f in zip(range(6), cam.frames())]
    for k, f in enumerate(frames):
        Image.fromarray(rgb_from_i420(f.lores)).save(tmp_path / f"{k:04d}.png")
    rep = ReplayCamera(str(tmp_path), fps=5, downscale=2)
    got = list(rep.frames())
    assert len(got) == 6 and [g.t for g in got] == pytest.approx([k / 5 for k in range(6)])
    assert got[0].main.shape == (180, 320) and got[0].lores.shape == (132, 160)
    rec = tmp_path / "rec.npz"
    save_recording(str(rec), frames)
    again = list(ReplayCamera(str(rec)).frames())
    assert np.array_equal(again[3].main, frames[3].main)
    assert [f.t for f in again] == pytest.approx([f.t - frames[0].t for f in frames])


def test_self_test_reports_ok_and_stall():
    ok = self_test(open_camera("synthetic", seed=1), n_frames=5)
    assert ok.ok and ok.frames == 5 and ok.main_size == (960, 540)
    stalled = SyntheticLaneCamera(make_script(1, "easy", 1), fps=10, stalls=[(0.0, 99.0)])
    bad = self_test(stalled, n_frames=3)
    assert not bad.ok and "no frame" in bad.problems[0]


def test_picamera2_missing_is_reported_not_hidden():
    with pytest.raises(CameraUnavailable, match="picamera2"):
        open_camera("picamera2")
    with pytest.raises(UnknownBackend):
        open_camera("webcam")


class _FakeRequest:
    def __init__(self, cam):
        self.cam = cam

    def make_array(self, name):
        w, h = self.cam.cfg[name]["size"]
        return np.full((h * 3 // 2, w), 100 if name == "main" else 50, np.uint8)

    def get_metadata(self):
        self.cam.ts += 33_333_333
        return {"SensorTimestamp": self.cam.ts}

    def release(self):
        self.cam.released += 1


class _FakePicamera2:
    """Stands in for picamera2.Picamera2 (which needs libcamera and a sensor)."""

    def __init__(self, num):
        self.num, self.ts, self.released, self.started = num, 5_000_000_000, 0, False

    def create_video_configuration(self, main, lores, controls, buffer_count):
        self.cfg = {"main": main, "lores": lores, "controls": controls}
        return self.cfg

    def configure(self, cfg):
        assert cfg is self.cfg

    def start(self):
        self.started = True

    def capture_request(self, wait=None):
        return "job"

    def wait(self, job, timeout=None):
        return _FakeRequest(self)

    def stop(self):
        self.started = False

    def close(self):
        pass


def test_picamera2_backend_streams_and_sensor_timestamps(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("picamera2")
    fake.Picamera2 = _FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", fake)
    cam = open_camera("picamera2", main_size=(640, 480), lores_size=(320, 240), fps=30)
    assert cam.cam.cfg["main"] == {"size": (640, 480), "format": "YUV420"}
    assert cam.cam.cfg["lores"] == {"size": (320, 240), "format": "YUV420"}
    assert cam.cam.cfg["controls"]["FrameDurationLimits"] == (33333, 33333)
    a, b = cam.capture(), cam.capture()
    assert a.main.shape == (480, 640) and a.lores.shape == (360, 320)
    assert b.t - a.t == pytest.approx(1 / 30, abs=1e-6) and a.t == pytest.approx(5.033333, 1e-6)
    assert cam.cam.released == 2
    report = self_test(cam, n_frames=3)
    assert report.ok and report.backend == "picamera2"
    cam.close()
