"""When a unit's high-temperature alarms wait: scheduled defrost and door openings, both capped.

A defrost heats the cabinet on purpose and an open door lets warm air in; alarming on either
cries wolf.  But a door left ajar or a defrost heater stuck on is exactly what must alarm, so
each suppression has a hard cap measured from its start, whatever the door or schedule says.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from storeedge.firmware.freezer.rules import Suppression, last_occurrence


class SuppressionState:
    """The door history and defrost schedule of one unit.

    Args:
        rules: the unit's suppression settings (seconds; defrost starts local ``HH:MM``).
        tz: the store's time zone (defrost starts are local times).
    """

    def __init__(self, rules: Suppression, tz: ZoneInfo):
        self.rules, self.tz = rules, tz
        self.opened_ts: float | None = None     # the current or last opening
        self.closed_ts: float | None = None     # None while open

    def door(self, is_open: bool, ts: float) -> None:
        """Record a door contact change at ``ts`` (epoch s)."""
        if is_open and (self.opened_ts is None or self.closed_ts is not None):
            self.opened_ts, self.closed_ts = ts, None
        elif not is_open and self.opened_ts is not None and self.closed_ts is None:
            self.closed_ts = ts

    @property
    def door_open(self) -> bool:
        return self.opened_ts is not None and self.closed_ts is None

    def suppressed(self, t: float) -> str | None:
        """Why high alarms wait at ``t`` (``"defrost"``/``"door"``), or None."""
        if self._in_defrost(t):
            return "defrost"
        if self._in_door(t):
            return "door"
        return None

    def until(self, t: float) -> float | None:
        """When the suppression active at ``t`` ends at the latest (its cap), or None."""
        r = self.rules
        ends = []
        if self._in_defrost(t):
            ends.append(self._defrost_start(t) + min(r.defrost_s + r.recovery_s,
                                                     r.defrost_cap_s))
        if self._in_door(t):
            ends.append(self.opened_ts + r.door_cap_s)
        return max(ends) if ends else None

    def _defrost_start(self, t: float) -> float:
        return max(last_occurrence(s, t, self.tz) for s in self.rules.defrost_starts)

    def _in_defrost(self, t: float) -> bool:
        r = self.rules
        if not r.defrost_starts:
            return False
        span = min(r.defrost_s + r.recovery_s, r.defrost_cap_s)
        return t - self._defrost_start(t) < span

    def _in_door(self, t: float) -> bool:
        if self.opened_ts is None or t < self.opened_ts:
            return False
        if t - self.opened_ts >= self.rules.door_cap_s:
            return False
        return self.closed_ts is None or t < self.closed_ts + self.rules.door_grace_s
