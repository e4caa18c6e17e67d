"""The alarm engine: temperature limits, sensor health, suppression, escalation, acknowledgement.

Pure logic: it is fed readings with *their own* timestamps (:meth:`AlarmEngine.observe`) and the
passing of time (:meth:`AlarmEngine.tick`), and returns :class:`AlarmNotice` values for the app
to emit.  It never reads a clock, so readings buffered through an outage are judged exactly as
if they had arrived live, and every notice carries the time the condition really happened.

Three kinds of alarm, never confused:

* ``temperature`` -- a probe's trusted readings breach LL/L/H/HH (see :class:`Condition`).
* ``sensor_fault`` -- the probe answers with bad data (CRC, 85 degC, 127.94 degC, all-zero,
  all-ff, stale, out of range) ``fault_after_reads`` times in a row.  Bad data never reaches the
  temperature conditions, so a broken probe cannot raise a temperature alarm.
* ``sensor_silent`` -- no trusted reading for ``silent_after_s`` (probe gone, empty reads,
  sampler stuck) while no sensor fault explains it.

An alarm repeats every ``repeat_s`` with a rising escalation level until acknowledged (who +
note); it closes once it is both cleared and acknowledged.
"""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, replace
from typing import NamedTuple

from storeedge.firmware.freezer.exc import AckError, UnknownAlarm
from storeedge.firmware.freezer.rules import Condition, FreezerRules
from storeedge.firmware.freezer.suppress import SuppressionState

log = logging.getLogger(__name__)

NO_DATA_FAULTS = ("probe_missing", "empty_read")


@dataclass(frozen=True)
class Alarm:
    """An alarm's state (immutable snapshot; the engine replaces it as it changes).

    Times are epoch seconds; ``value_c`` is the window value that raised it (degC).
    """

    id: str
    kind: str                 # temperature | sensor_fault | sensor_silent
    probe: str
    unit: str
    condition: str            # LL/L/H/HH, or the fault name, or "silent"
    severity: str             # critical | warning
    raised_ts: float
    value_c: float | None
    limit_c: float | None
    detail: str
    escalation: int = 0
    notified_ts: float = 0.0
    cleared_ts: float | None = None
    acked_ts: float | None = None
    acked_by: str | None = None
    ack_note: str | None = None

    @property
    def active(self) -> bool:
        """Still in its alarm condition (not cleared)."""
        return self.cleared_ts is None

    @property
    def acked(self) -> bool:
        return self.acked_ts is not None


@dataclass(frozen=True)
class AlarmNotice:
    """Something to tell people: ``action`` is raised / escalated / cleared / acked."""

    action: str
    alarm: Alarm
    ts: float
    notify: str               # who the escalation level names ("store", "manager", ...)


class Trigger(NamedTuple):
    """What raises an alarm (the engine adds the id, probe and unit)."""

    kind: str
    condition: str
    ts: float                          # when the condition was met, epoch seconds
    detail: str
    value_c: float | None = None       # the window value, degC (temperature alarms)
    limit_c: float | None = None       # the limit breached, degC
    severity: str = "critical"


@dataclass
class _CondState:
    since: float | None = None     # when the window value first held (epoch s)
    alarm_id: str | None = None


@dataclass
class _ProbeState:
    readings: collections.deque
    last_ts: float
    last_valid_ts: float
    bad_run: int = 0
    last_fault: str | None = None
    last_detail: str = ""


class AlarmEngine:
    """Evaluates every probe's readings against the rules.

    Args:
        rules: the probes, units, limits and policy.
        start_ts: epoch seconds the engine starts at (the silence timers start here).
    """

    def __init__(self, rules: FreezerRules, start_ts: float):
        self.rules = rules
        self.suppression = {name: SuppressionState(u.suppression, rules.tz)
                            for name, u in rules.units.items()}
        keep = {p: max([c.window_s for c in pr.conditions] + [0.0])
                for p, pr in rules.probes.items()}
        self._keep = keep
        self._probes = {p: _ProbeState(collections.deque(), start_ts, start_ts)
                        for p in rules.probes}
        self._conds = {(p, c.level): _CondState() for p, pr in rules.probes.items()
                       for c in pr.conditions}
        self._open: dict[str, Alarm] = {}
        self.history: collections.deque[Alarm] = collections.deque(maxlen=500)

    def retune(self, rules: FreezerRules) -> None:
        """Adopt ``rules`` with the same units and probes (live config): open alarms and
        readings stay; a newly configured level starts clean; suppression follows new times."""
        for name, u in rules.units.items():
            if u.suppression != self.suppression[name].rules:
                self.suppression[name] = SuppressionState(u.suppression, rules.tz)
        self._keep = {p: max([c.window_s for c in pr.conditions] + [0.0])
                      for p, pr in rules.probes.items()}
        for p, pr in rules.probes.items():
            for c in pr.conditions:
                self._conds.setdefault((p, c.level), _CondState())
        self.rules = rules

    # ------------------------------------------------------------------ inputs
    def observe(self, probe: str, ts: float, temp_c: float | None, fault: str | None = None,
                detail: str = "") -> list[AlarmNotice]:
        """Judge one reading of ``probe`` taken at ``ts``: a temperature, or a fault name."""
        st = self._probes[probe]
        if ts < st.last_ts:
            self._clock_went_back(probe, ts)
        st.last_ts = ts
        if fault is not None or temp_c is None:
            return self._bad_reading(probe, ts, fault or "no_value", detail)
        notices = self._good_reading(probe, ts, temp_c)
        for pr_cond in self.rules.probes[probe].conditions:
            notices += self._evaluate(probe, pr_cond, ts)
        return notices

    def door(self, unit: str, is_open: bool, ts: float) -> None:
        """The door contact of ``unit`` changed at ``ts``."""
        self.suppression[unit].door(is_open, ts)

    def tick(self, now: float) -> list[AlarmNotice]:
        """Time passed (``now``, epoch s): silent probes, repeats.  Call every few seconds."""
        notices: list[AlarmNotice] = []
        for probe in self.rules.probes:
            st = self._probes[probe]
            st.last_valid_ts = min(st.last_valid_ts, now)      # the wall clock went back
            notices += self._check_silent(probe, now)
        for alarm in list(self._open.values()):
            if alarm.notified_ts > now:
                alarm = self._put(replace(alarm, notified_ts=now))
            notices += self._repeat(alarm, now)
        return notices

    def _clock_went_back(self, probe: str, ts: float) -> None:
        """A reading older than the last one: the wall clock was stepped back (NTP fixing a
        wrong RTC).  Times before and after the step cannot be compared, so the probe's window
        and pending delays restart from this reading; open alarms stay open."""
        st = self._probes[probe]
        log.warning("probe %s: reading at %.0f is %.0f s older than the last one: the wall "
                    "clock went back; its window and pending delays restart", probe, ts,
                    st.last_ts - ts)
        st.readings.clear()
        st.last_valid_ts = min(st.last_valid_ts, ts)
        for cond in self.rules.probes[probe].conditions:
            self._conds[(probe, cond.level)].since = None

    def ack(self, alarm_id: str, by: str, note: str, ts: float) -> AlarmNotice:
        """Acknowledge an open alarm: ``by`` (name or initials) and ``note`` are required."""
        alarm = self._open.get(alarm_id)
        if alarm is None:
            known = ", ".join(sorted(self._open)) or "none"
            raise UnknownAlarm(f"no open alarm {alarm_id!r} (open alarms: {known})")
        if not by or not by.strip():
            raise AckError("an acknowledgement needs who acknowledges (name or initials)")
        if not note or not note.strip():
            raise AckError("an acknowledgement needs a note: the corrective action taken")
        if alarm.acked:
            raise AckError(f"alarm {alarm_id} was already acknowledged by {alarm.acked_by}")
        alarm = self._put(replace(alarm, acked_ts=ts, acked_by=by.strip(),
                                  ack_note=note.strip()))
        return AlarmNotice("acked", alarm, ts, self._notify(alarm))

    def restore(self, alarms: list[Alarm]) -> int:
        """Take back the open alarms saved before a restart (unknown probes/limits are
        dropped with a warning: the config changed).  Returns how many were restored."""
        n = 0
        for alarm in alarms:
            probe = self.rules.probes.get(alarm.probe)
            levels = {c.level for c in probe.conditions} if probe else set()
            if probe is None or (alarm.kind == "temperature" and alarm.condition not in levels):
                log.warning("saved alarm %s no longer matches the config: dropped", alarm.id)
                continue
            self._open[alarm.id] = alarm
            if alarm.kind == "temperature" and alarm.active:
                self._conds[(alarm.probe, alarm.condition)] = _CondState(alarm.raised_ts,
                                                                         alarm.id)
            n += 1
        return n

    # ------------------------------------------------------------------ queries
    def open_alarms(self) -> list[Alarm]:
        """Alarms not yet both cleared and acknowledged, oldest first."""
        return sorted(self._open.values(), key=lambda a: a.raised_ts)

    def get(self, alarm_id: str) -> Alarm:
        if alarm_id in self._open:
            return self._open[alarm_id]
        for alarm in self.history:
            if alarm.id == alarm_id:
                return alarm
        raise UnknownAlarm(f"no alarm {alarm_id!r}")

    def busy(self, probe: str) -> bool:
        """True while a condition of ``probe`` is pending or an alarm of it is active
        (the sampler then reads faster)."""
        if any(a.probe == probe and a.active for a in self._open.values()):
            return True
        return any(self._conds[(probe, c.level)].since is not None
                   for c in self.rules.probes[probe].conditions)

    # ------------------------------------------------------------------ internals
    def _good_reading(self, probe: str, ts: float, temp_c: float) -> list[AlarmNotice]:
        st = self._probes[probe]
        st.readings.append((ts, temp_c))
        while st.readings and st.readings[0][0] <= ts - self._keep[probe]:
            st.readings.popleft()
        st.last_valid_ts, st.bad_run, st.last_fault = ts, 0, None
        notices = []
        for alarm in list(self._open.values()):
            if alarm.probe == probe and alarm.kind != "temperature" and alarm.active:
                notices.append(self._clear(alarm, ts, f"trusted reading {temp_c:.2f} degC"))
        return notices

    def _bad_reading(self, probe: str, ts: float, fault: str, detail: str) -> list[AlarmNotice]:
        st = self._probes[probe]
        st.bad_run += 1
        st.last_fault, st.last_detail = fault, detail
        if fault in NO_DATA_FAULTS or st.bad_run < self.rules.policy.fault_after_reads:
            return []
        if self._active_of(probe, "sensor_fault") is not None:
            return []
        text = f"{st.bad_run} bad reads in a row, last: {detail or fault}"
        return [self._raise(probe, Trigger("sensor_fault", fault, ts, text))]

    def _check_silent(self, probe: str, now: float) -> list[AlarmNotice]:
        st = self._probes[probe]
        quiet = now - st.last_valid_ts
        if quiet < self.rules.policy.silent_after_s:
            return []
        if self._active_of(probe, "sensor_silent") or self._active_of(probe, "sensor_fault"):
            return []
        why = st.last_detail or "no reading arrived"
        text = f"no trusted reading for {quiet:.0f} s ({why})"
        at = st.last_valid_ts + self.rules.policy.silent_after_s
        return [self._raise(probe, Trigger("sensor_silent", "silent", at, text))]

    def _window_value(self, probe: str, cond: Condition, t: float) -> float | None:
        values = [v for ts, v in self._probes[probe].readings if ts > t - cond.window_s]
        if not values:
            return None
        if cond.mode == "average":
            return sum(values) / len(values)
        worst = max if cond.above else min
        best = min if cond.above else max
        return (worst if cond.mode == "any" else best)(values)

    def _evaluate(self, probe: str, cond: Condition, t: float) -> list[AlarmNotice]:
        """Judge ``cond`` on the window ending at the reading taken at ``t``.

        Only readings move a temperature condition: a suppression that ends between readings
        is noticed at the next one (the sampler reads fast while a condition is pending).
        """
        cs = self._conds[(probe, cond.level)]
        value = self._window_value(probe, cond, t)
        if value is None:
            return []
        beyond = value > cond.limit_c if cond.above else value < cond.limit_c
        alarm = self._open.get(cs.alarm_id) if cs.alarm_id else None
        if alarm is not None and alarm.active:
            back = (value < cond.limit_c - cond.deadband_c if cond.above
                    else value > cond.limit_c + cond.deadband_c)
            if back:
                cs.since, cs.alarm_id = None, None
                return [self._clear(alarm, t, f"window value {value:.2f} degC")]
            return []
        if not beyond:
            cs.since = None
            return []
        return self._maybe_raise(probe, cond, cs, value, t)

    def _maybe_raise(self, probe: str, cond: Condition, cs: _CondState, value: float,
                     t: float) -> list[AlarmNotice]:
        if cs.since is None:
            cs.since = t
        if t - cs.since < cond.delay_s:
            return []
        unit = self.rules.probes[probe].unit
        if cond.above and self.suppression[unit].suppressed(t):
            return []
        sign = ">" if cond.above else "<"
        text = (f"{cond.mode} over {cond.window_s:.0f} s = {value:.2f} degC {sign} "
                f"{cond.limit_c:g} degC for {t - cs.since:.0f} s")
        notice = self._raise(probe, Trigger("temperature", cond.level, t, text, value,
                                            cond.limit_c, cond.severity))
        cs.alarm_id = notice.alarm.id
        return [notice]

    def _raise(self, probe: str, tr: Trigger) -> AlarmNotice:
        unit = self.rules.probes[probe].unit
        alarm_id = f"{probe}-{tr.condition}-{int(tr.ts)}".lower().replace("_", "-")
        alarm = self._put(Alarm(alarm_id, tr.kind, probe, unit, tr.condition, tr.severity,
                                tr.ts, tr.value_c, tr.limit_c, tr.detail, 0, tr.ts))
        log.warning("ALARM %s raised: %s %s on %s (%s)", alarm_id, tr.kind, tr.condition,
                    probe, tr.detail)
        return AlarmNotice("raised", alarm, tr.ts, self._notify(alarm))

    def _clear(self, alarm: Alarm, ts: float, why: str) -> AlarmNotice:
        alarm = self._put(replace(alarm, cleared_ts=ts))
        log.info("alarm %s cleared: %s", alarm.id, why)
        return AlarmNotice("cleared", alarm, ts, self._notify(alarm))

    def _repeat(self, alarm: Alarm, now: float) -> list[AlarmNotice]:
        if alarm.acked or not alarm.active:
            return []
        if now - alarm.notified_ts < self.rules.policy.repeat_s:
            return []
        alarm = self._put(replace(alarm, escalation=alarm.escalation + 1, notified_ts=now))
        who = self._notify(alarm)
        log.warning("alarm %s not acknowledged: escalation %d (%s)", alarm.id,
                    alarm.escalation, who)
        return [AlarmNotice("escalated", alarm, now, who)]

    def _notify(self, alarm: Alarm) -> str:
        levels = self.rules.policy.escalation
        return levels[min(alarm.escalation, len(levels) - 1)]

    def _put(self, alarm: Alarm) -> Alarm:
        if alarm.acked and not alarm.active:
            self._open.pop(alarm.id, None)
            self.history.append(alarm)
        else:
            self._open[alarm.id] = alarm
        return alarm

    def _active_of(self, probe: str, kind: str) -> Alarm | None:
        for alarm in self._open.values():
            if alarm.probe == probe and alarm.kind == kind and alarm.active:
                return alarm
        return None
