"""The freezer app's rules as plain values: what the alarm engine, sampler and HACCP book run on.

:mod:`.config` turns a validated config into these (:func:`storeedge.firmware.freezer.config.
build_rules`); tests build them directly.  All temperatures degC, all durations seconds, all
times of day ``HH:MM`` in the store's time zone.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

MODES = ("any", "all", "average")
LEVELS = ("LL", "L", "H", "HH")          # low-low, low, high, high-high
SEVERITY = {"LL": "critical", "L": "warning", "H": "warning", "HH": "critical"}


@dataclass(frozen=True)
class Condition:
    """One limit on one probe.

    The window mode turns the readings of the last ``window_s`` into one value: ``any`` (the
    worst reading: the most sensitive), ``all`` (the best reading: every reading must breach),
    ``average`` (their mean).  The condition *holds* while that value is beyond ``limit_c``;
    it alarms once it has held for ``delay_s``, and clears once the value is back by
    ``deadband_c`` (so a reading hovering at the limit cannot chatter).
    """

    level: str
    limit_c: float
    delay_s: float = 600.0
    window_s: float = 600.0
    mode: str = "average"
    deadband_c: float = 1.0

    @property
    def above(self) -> bool:
        """True for high limits (H, HH): breached by warmer readings."""
        return self.level in ("H", "HH")

    @property
    def severity(self) -> str:
        return SEVERITY[self.level]


@dataclass(frozen=True)
class ProbeRules:
    """A probe: its ROM id, the unit it measures, its sampling and its limits."""

    name: str
    rom: str
    unit: str
    conditions: tuple[Condition, ...] = ()
    interval_s: float = 60.0
    fast_interval_s: float = 15.0


@dataclass(frozen=True)
class Suppression:
    """When high-temperature alarms of a unit wait (never low alarms, never sensor alarms).

    Defrost: from each start for ``defrost_s + recovery_s``; door: from the door opening until
    ``door_grace_s`` after it closes.  Either way, never longer than its hard cap
    (``defrost_cap_s``, ``door_cap_s``) counted from the start / the opening.
    """

    defrost_starts: tuple[str, ...] = ()
    defrost_s: float = 1800.0
    recovery_s: float = 1200.0
    defrost_cap_s: float = 3600.0
    door_grace_s: float = 300.0
    door_cap_s: float = 900.0


@dataclass(frozen=True)
class UnitRules:
    """A cabinet: chilled or frozen, its HACCP limit, its probes and suppression."""

    name: str
    kind: str                       # "chilled" | "frozen"
    compliance_max_c: float
    probes: tuple[str, ...]
    suppression: Suppression = field(default_factory=Suppression)
    door_pin: int | None = None


@dataclass(frozen=True)
class AlarmPolicy:
    """Repeat/escalation and sensor-health thresholds, shared by all probes."""

    repeat_s: float = 900.0
    escalation: tuple[str, ...] = ("store", "manager", "district")
    fault_after_reads: int = 3
    silent_after_s: float = 600.0


@dataclass(frozen=True)
class FreezerRules:
    """Everything the app logic needs."""

    units: dict[str, UnitRules]
    probes: dict[str, ProbeRules]
    policy: AlarmPolicy = field(default_factory=AlarmPolicy)
    timezone: str = "UTC"
    haccp_checks: tuple[str, ...] = ("06:00", "18:00")
    batch_s: float = 300.0
    stale_after_s: float = 1800.0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def parse_hhmm(text: str) -> tuple[int, int]:
    """``"06:30"`` -> ``(6, 30)``; ValueError for anything else."""
    try:
        h, m = (int(x) for x in text.split(":"))
    except (ValueError, AttributeError):
        raise ValueError(f"{text!r} is not a time of day HH:MM") from None
    if not (0 <= h < 24 and 0 <= m < 60) or len(text) != 5:
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00..23:59)")
    return h, m


def last_occurrence(hhmm: str, t: float, tz: ZoneInfo) -> float:
    """Epoch seconds of the latest ``hhmm`` (local time in ``tz``) at or before ``t``."""
    h, m = parse_hhmm(hhmm)
    day = _dt.datetime.fromtimestamp(t, tz).date()
    at = _dt.datetime.combine(day, _dt.time(h, m), tzinfo=tz)
    if at.timestamp() > t:
        at = _dt.datetime.combine(day - _dt.timedelta(days=1), _dt.time(h, m), tzinfo=tz)
    return at.timestamp()
