"""Clock seam: monotonic and wall time, plus sleeping, through one object.

App logic never calls :func:`time.time` directly; it receives a :class:`Clock`, so tests can
drive time with a :class:`SimulatedClock` (including wall-clock jumps while monotonic time keeps
running, as happens when NTP corrects a device that booted with a wrong RTC).
"""
from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What app logic needs from time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (arbitrary origin)."""

    def time(self) -> float:
        """Wall clock: seconds since the Unix epoch, UTC."""

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of this clock's time."""


class SystemClock:
    """The real clock of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock:
    """A clock the test moves by hand.

    Args:
        start: initial wall time, seconds since the epoch (default 2026-11-18 UTC).
        auto_advance: when true, :meth:`sleep` advances the clock itself (single-threaded
            tests); otherwise it blocks until another thread advances past the deadline.
    """

    def __init__(self, start: float = 1_795_000_000.0, *, auto_advance: bool = False):
        self._mono = 0.0
        self._wall_offset = float(start)
        self._auto = auto_advance
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        with self._cond:
            return self._mono

    def time(self) -> float:
        with self._cond:
            return self._mono + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (>= 0) and wake sleepers."""
        if seconds < 0:
            raise ValueError("a simulated clock only moves forward; use set_time for wall jumps")
        with self._cond:
            self._mono += seconds
            self._cond.notify_all()

    def set_time(self, epoch: float) -> None:
        """Jump the wall clock to ``epoch`` seconds; monotonic time is unchanged."""
        with self._cond:
            self._wall_offset = float(epoch) - self._mono

    def sleep(self, seconds: float) -> None:
        with self._cond:
            deadline = self._mono + max(0.0, seconds)
            if self._auto:
                self._mono = max(self._mono, deadline)
                self._cond.notify_all()
                return
            while self._mono < deadline:
                self._cond.wait(0.5)
