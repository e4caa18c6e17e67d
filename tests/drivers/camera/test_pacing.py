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
