"""Sampling: when to read each probe, stale detection, and batching readings into telemetry.

Each probe is read every ``interval_s`` (default 60 s), and every ``fast_interval_s`` while one
of its conditions is pending or an alarm of it is active.  Scheduling runs on the monotonic
clock; each reading is stamped with the wall clock (epoch seconds) when it was taken.
"""
from __future__ import annotations

from typing import NamedTuple

from storeedge.drivers.onewire import Sample, StaleDetector
from storeedge.firmware.freezer.rules import ProbeRules


class ProbeStatus(NamedTuple):
    """The latest read of one probe (what ``test sensors`` on the console shows).

    ``temp_c`` is degC or None; ``ts`` epoch seconds of the read (None: never read yet);
    ``last_good_ts`` the last trusted reading.
    """

    name: str
    rom: str
    unit: str
    temp_c: float | None
    fault: str | None
    detail: str
    ts: float | None
    last_good_ts: float | None


class Reading(NamedTuple):
    """One reading in a telemetry batch: degC, or the fault name."""

    probe: str
    ts: float
    temp_c: float | None
    fault: str | None


class Sampler:
    """Reads the configured probes from a 1-Wire bus on their schedules.

    Args:
        bus: a :class:`~storeedge.drivers.onewire.SysfsBus` (or the simulated one).
        probes: the probes by name.
        stale_after_s: identical raw bytes for longer than this are a STALE fault, s.
    """

    def __init__(self, bus, probes: dict[str, ProbeRules], *, stale_after_s: float = 1800.0):
        self.bus, self.probes = bus, probes
        self._stale = {n: StaleDetector(stale_after_s) for n in probes}
        self._next = {n: float("-inf") for n in probes}
        self._status = {n: ProbeStatus(n, p.rom, p.unit, None, None, "not read yet", None, None)
                        for n, p in probes.items()}
        self._good: dict[str, tuple[float, float]] = {}   # name -> (ts, degC) of the last trusted

    def due(self, mono: float) -> list[str]:
        """Probes whose next read is due at monotonic time ``mono`` (s)."""
        return [n for n, t in self._next.items() if t <= mono]

    def next_due(self) -> float:
        """Monotonic time of the next read (s)."""
        return min(self._next.values())

    def read(self, name: str, mono: float, ts: float, busy: bool = False) -> Sample:
        """Read probe ``name`` now: ``mono`` schedules the next read, ``ts`` stamps this one."""
        probe = self.probes[name]
        sample = self._stale[name].check(self.bus.read(probe.rom), ts)
        self.schedule(name, mono, busy)
        old = self._status[name]
        good_ts = ts if sample.ok else old.last_good_ts
        if sample.ok:
            self._good[name] = (ts, sample.temp_c)
        self._status[name] = ProbeStatus(name, probe.rom, probe.unit, sample.temp_c,
                                         sample.fault.value if sample.fault else None,
                                         sample.detail, ts, good_ts)
        return sample

    def reschedule(self, name: str) -> None:
        """Read ``name`` on the next pass (its interval changed; the read re-schedules it)."""
        self._next[name] = float("-inf")

    def schedule(self, name: str, mono: float, busy: bool) -> None:
        """Next read of ``name`` one interval after ``mono`` (the fast one when ``busy``)."""
        probe = self.probes[name]
        self._next[name] = mono + (probe.fast_interval_s if busy else probe.interval_s)

    def status(self) -> list[ProbeStatus]:
        """Latest read of every configured probe, in config order."""
        return [self._status[n] for n in self.probes]

    def latest_good(self, name: str, now: float, max_age_s: float) -> float | None:
        """The probe's latest trusted temperature (degC) if taken within ``max_age_s`` of
        ``now``, else None (a bad read after a good one does not hide the good one)."""
        if name not in self._good:
            return None
        ts, temp = self._good[name]
        return temp if now - ts <= max_age_s else None


class Batcher:
    """Collects readings into telemetry batches of at most ``batch_s`` seconds / ``max_n``."""

    def __init__(self, batch_s: float = 300.0, max_n: int = 500):
        self.batch_s, self.max_n = batch_s, max_n
        self._items: list[Reading] = []
        self._first_mono: float | None = None

    def add(self, reading: Reading, mono: float) -> None:
        if not self._items:
            self._first_mono = mono
        self._items.append(reading)

    def take(self, mono: float, force: bool = False) -> list[Reading]:
        """The batch if it is due (or ``force``), else ``[]``; the batch is then emptied."""
        if not self._items:
            return []
        if not force and len(self._items) < self.max_n and mono - self._first_mono < self.batch_s:
            return []
        items, self._items = self._items, []
        return items

