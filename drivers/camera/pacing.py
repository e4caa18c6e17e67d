"""Real-time pacing of recorded frames (replay folders/.npz and video files).

A recording's frame times start at 0 s; paced on a clock, frame ``t`` is returned no earlier
than ``t`` seconds after the first one, and its time becomes the clock's elapsed time (s, on
the clock's monotonic scale), so a slow consumer sees the real gaps, as from a live camera.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RealtimePacer:
    """Sleeps on ``clock`` until each frame's time is due.

    Attributes:
        clock: a :class:`storeedge.drivers.clock.Clock` (``monotonic()`` and ``sleep(s)``).
        start: the clock's monotonic time (s) of recording time 0; set by the first frame.
    """

    clock: object
    start: float | None = None

    def pace(self, t: float) -> float:
        """Wait until recording time ``t`` (s) is due; the frame's time (s since ``start``)."""
        if self.start is None:
            self.start = self.clock.monotonic() - t
        self.clock.sleep(max(0.0, self.start + t - self.clock.monotonic()))
        return self.clock.monotonic() - self.start
