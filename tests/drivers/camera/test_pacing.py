"""Real-time pacing shared by the replay and video cameras, on a simulated clock."""
from __future__ import annotations

import numpy as np

from storeedge.drivers.camera.pacing import RealtimePacer
from storeedge.drivers.camera.replay import ReplayCamera
from storeedge.drivers.clock import SimulatedClock


def test_frames_wait_for_their_time_and_a_late_consumer_sees_the_real_gap():
    clock = SimulatedClock(auto_advance=True)
    clock.advance(100.0)
    pacer = RealtimePacer(clock)
    assert pacer.pace(0.5) == 0.5 and clock.monotonic() == 100.0    # the first frame: now
    assert pacer.pace(1.0) == 1.0 and clock.monotonic() == 100.5    # slept 0.5 s
    clock.advance(2.0)                                               # the consumer was slow
    assert pacer.pace(1.5) == 3.0 and clock.monotonic() == 102.5    # no sleep, real time


def test_replay_camera_paces_a_recording_on_its_clock(tmp_path):
    n, fps = 4, 10.0
    path = tmp_path / "rec.npz"
    main = np.zeros((n, 240, 320), np.uint8)
    np.savez(path, main=main, lores=np.zeros((n, 120, 106), np.uint8),
             t=np.arange(n) / fps)
    clock = SimulatedClock(auto_advance=True)
    cam = ReplayCamera(str(path), fps=fps, realtime=True, clock=clock)
    times = [cam.capture().t for _ in range(n)]
    assert np.allclose(times, np.arange(n) / fps) and np.isclose(clock.monotonic(), 0.3)
    assert cam.capture() is None


def test_video_camera_paces_a_file_on_its_clock_across_a_loop(tmp_path):
    from storeedge.drivers.camera.base import Frame
    from storeedge.drivers.camera.video import VideoReplayCamera, write_video
    n, fps = 3, 10.0
    path = str(tmp_path / "clip.mkv")
    frames = [Frame(k, k / fps, np.full((96, 128), 40 + 20 * k, np.uint8),
                    np.full((48, 42), 128, np.uint8)) for k in range(n)]
    assert write_video(path, frames, fps) == n
    clock = SimulatedClock(auto_advance=True)
    cam = VideoReplayCamera(path, downscale=3, realtime=True, clock=clock, loop=True)
    try:
        times = [cam.capture().t for _ in range(n + 2)]          # a second lap starts
    finally:
        cam.close()
    assert np.allclose(times, np.arange(n + 2) / fps, atol=1e-3)
    assert np.isclose(clock.monotonic(), (n + 1) / fps, atol=1e-3)
