"""Recorded footage: the PyAV replay backend and the labelled-recording format.

The footage is made here: frames rendered by the synthetic lane, encoded with libx264 in
lossless mode (qp=0, yuv420p: the decoder's output equals the encoder's input bit for bit),
then decoded by the replay backend and compared with the original frames."""
from __future__ import annotations

import json

import numpy as np
import pytest

from storeedge.drivers.camera import open_camera
from storeedge.drivers.camera.exc import ReplayError
from storeedge.drivers.camera.lane import scripted
from storeedge.drivers.camera.recording import open_recording, pos_from_script
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera
from storeedge.drivers.camera.video import lores_from_yuv420, write_video, yuv420_of
from storeedge.drivers.pos import ReplayPosFeed
from storeedge.firmware.checkout.record import record_lane
from storeedge.firmware.checkout.sim import pos_records, run_lane


def _frames(n, seed=51, fps=15.0):
    cam = SyntheticLaneCamera(scripted(seed, ["scanned"], "medium"), fps=fps)
    out = []
    for f in cam.frames():
        out.append(f)
        if len(out) == n:
            return out
    return out


def test_lossless_mp4_replays_frame_exact(tmp_path):
    frames = _frames(24)
    path = str(tmp_path / "lane.mp4")
    assert write_video(path, frames, fps=15.0, lossless=True) == 24
    cam = open_camera("video", source=path)
    got = list(cam.frames())
    assert len(got) == len(frames)
    assert cam.info.main_size == (960, 540) and cam.info.lores_size == (320, 180)
    for orig, dec in zip(frames, got):
        assert np.array_equal(dec.main, orig.main)            # luma bit-exact
        yuv = yuv420_of(orig)
        h, w = orig.main.shape
        want = lores_from_yuv420(yuv[:h], yuv[h:h + h // 4].reshape(h // 2, w // 2),
                                 yuv[h + h // 4:].reshape(h // 2, w // 2), 3)
        assert np.array_equal(dec.lores, want)
        assert abs(dec.t - orig.t) < 1e-3                   # presentation times kept
    assert [f.seq for f in got] == list(range(1, 25))


def test_lossy_mp4_is_close_but_not_exact(tmp_path):
    """The control: the comparison above can fail (a lossy encode changes pixels)."""
    frames = _frames(6)
    path = str(tmp_path / "lossy.mp4")
    write_video(path, frames, fps=15.0, lossless=False)
    got = list(open_camera("video", source=path).frames())
    diffs = [np.abs(a.main.astype(int) - b.main.astype(int)) for a, b in zip(frames, got)]
    assert any(d.max() > 0 for d in diffs) and all(d.mean() < 3.0 for d in diffs)


def test_video_gaps_and_loop(tmp_path):
    frames = _frames(6)
    frames = [f._replace(t=f.t + (1.0 if k >= 3 else 0.0)) for k, f in enumerate(frames)]
    path = str(tmp_path / "gap.mkv")
    write_video(path, frames, fps=15.0)
    cam = open_camera("video", source=path, loop=True)
    ts = [cam.capture().t for _ in range(9)]
    assert ts[3] - ts[2] > 1.0                                 # the gap is kept
    assert all(b > a for a, b in zip(ts, ts[1:]))              # the loop goes on in time


def test_bad_video_sources_are_clear_errors(tmp_path):
    with pytest.raises(ReplayError, match="does not exist"):
        open_camera("video", source=str(tmp_path / "none.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(ReplayError, match="cannot decode"):
        open_camera("video", source=str(bad))


def test_recorded_lane_scores_like_the_live_one(tmp_path, detector):
    kinds = ["scanned", "skipped", "scanned"]
    cam = SyntheticLaneCamera(scripted(52, kinds), fps=15.0)
    out = str(tmp_path / "lane.lane")
    res = record_lane(cam, ReplayPosFeed(pos_records(cam.script)), out, seconds=1e9)
    rec = open_recording(out)
    assert res.frames > 50 and len(rec.truth) == 3
    assert [p.kind for p in rec.pos] == [p.kind for p in cam.script.pos]
    run = run_lane(rec.camera(), detector, pos=rec.pos_records())     # H.264 CRF 20
    (alert,) = run.alerts
    skipped = rec.truth[1]
    p = alert.outcome.item_pass
    assert skipped.kind == "skipped" and p.t_start < skipped.t_end and skipped.t_start < p.t_end


def test_malformed_recording_names_file_and_line(tmp_path):
    cam = SyntheticLaneCamera(scripted(53, ["scanned"]), fps=15.0)
    out = tmp_path / "r.lane"
    record_lane(cam, None, str(out), seconds=0.5)
    (out / "pos.jsonl").write_text(json.dumps({"t": 1.0, "kind": "scan", "line": "]E0"})
                                   + "\n" + json.dumps({"t": "soon", "kind": "scan"}) + "\n")
    with pytest.raises(ReplayError, match=r"pos.jsonl:2"):
        open_recording(str(out))
    (out / "pos.jsonl").write_text("")
    (out / "truth.jsonl").write_text(json.dumps({"kind": "x", "t_start": 0, "t_scan_in": 0,
                                                 "t_scan_out": 0, "t_end": 1,
                                                 "expect": "maybe"}) + "\n")
    with pytest.raises(ReplayError, match=r"truth.jsonl:1: expect"):
        open_recording(str(out))
    assert pos_from_script(cam.script)[0].kind == "txn_start"


def test_record_tool_cli_records_a_synthetic_lane(tmp_path, capsys):
    from storeedge.firmware.checkout.record import main

    cfg = tmp_path / "lane.yaml"
    cfg.write_text("device: {id: lane-1, kind: checkout, store: s0042}\n"
                   "security: {insecure: true}\n"
                   "checkout:\n  camera: {type: synthetic, fps: 10, seed: 3}\n"
                   "  pos: {type: synthetic}\n")
    out = tmp_path / "cli.lane"
    assert main(["--config", str(cfg), "--out", str(out), "--seconds", "2"]) == 0
    assert "recorded" in capsys.readouterr().out
    rec = open_recording(str(out))
    frames = list(rec.camera().frames())
    assert 15 <= len(frames) <= 25 and rec.meta["lane"]["device"] == "lane-1"
    assert rec.truth and all(t.expect in ("none", "missed", "switch") for t in rec.truth)
    assert main(["--config", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 1
