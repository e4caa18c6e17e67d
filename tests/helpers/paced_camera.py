"""A synthetic lane camera whose time is a simulated clock that waits for its consumer.

A real sensor keeps its cadence whatever the CPU does; on a loaded 2-core CI machine a
real-time simulated camera does not (it renders in Python, and its frames queue up or arrive
late), so a test of the running lane would see "blind" gaps that only measure the machine.
:class:`ConsumerPacedLaneCamera` keeps the sensor timeline exact instead: frame ``k`` is
stamped ``t0 + k / fps`` (s) and the shared :class:`SimulatedClock` is moved to that time
only once ``ready()`` says the consumer took the previous frame. Everything that reads the
clock (the lane logic, the scanner simulator, the POS feed) then sees the same timeline
however slow the machine is. After the script it keeps filming the empty lane for
``tail_s`` (s), so decisions that wait for time to pass are still made.
"""
from __future__ import annotations

import time
from typing import Callable

from storeedge.drivers.camera.base import Frame
from storeedge.drivers.camera.lane import LaneScript
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera
from storeedge.drivers.clock import SimulatedClock


class ConsumerPacedLaneCamera(SyntheticLaneCamera):
    """Synthetic lane camera paced by its consumer on ``clock`` (see the module doc).

    Args:
        script: the transaction to film.
        clock: the simulated clock every part of the app reads; this camera moves it.
        fps: frames per simulated second.
        tail_s: empty-lane film after the script ends (s).
        ready: true when the next frame may be taken (e.g. the app's frame queue is empty);
            set it after the app exists (``cam.ready = lambda: len(app.queue) == 0``).
    """

    def __init__(self, script: LaneScript, clock: SimulatedClock, *, fps: float = 12.0,
                 tail_s: float = 6.0, ready: Callable[[], bool] | None = None):
        super().__init__(script, fps=fps, t0=clock.monotonic())
        self.sim_clock = clock
        self.tail_s = float(tail_s)
        self.ready = ready or (lambda: True)

    @property
    def finished(self) -> bool:
        return self._k / self.fps > self.script.duration + self.tail_s

    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        """The next frame once the consumer is ready (None after ``timeout_s`` real s of
        waiting, or at the end); the clock is moved to the frame's time."""
        end = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() >= end:
                return None
            time.sleep(0.002)
        frame = super().capture(timeout_s)
        if frame is not None:
            self.sim_clock.advance(max(0.0, frame.t - self.sim_clock.monotonic()))
        return frame
