"""The freezer monitor: sampler + alarm engine + HACCP book + door contacts, emitting events.

:class:`FreezerApp` is the object the CLI runs and the console talks to.  It receives its
drivers (a 1-Wire bus, door contacts as ``() -> bool`` callables), a clock and an event sink
(an :class:`~storeedge.firmware.common.runner.EventSink`: the DeviceService, or a recording
double), so tests drive it with a SimulatedClock and a simulated bus.  It is wired from a
config in :func:`storeedge.firmware.freezer.wiring.build` (the runner's and the demo's way).

Console API (thread-safe; the technician console of issue 9 calls these)::

    app.probes()                        -> list[ProbeStatus]   latest read of every probe
    app.test_sensors()                  -> list[ProbeStatus]   read every probe now
    app.alarms()                        -> list[Alarm]         open alarms, oldest first
    app.ack(alarm_id, by, note)         -> Alarm               raises UnknownAlarm / AckError
    app.haccp_records(since, until)     -> list[HaccpRecord]
    app.haccp_action(record_id, initials, action) -> HaccpRecord
    app.enrol(measure=True)             -> list[EnrolResult]   ROM ids, conversion times

Over MQTT the same ack is the signed command ``.../cmd/ack`` with ``{"alarm": ID, "note":
TEXT}`` (``storeedge.signing``): ``by`` -- the alarm's ``acked_by`` and the HACCP initials --
is the signer's identity, checked by the DeviceService before this app sees the command.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, NamedTuple

from storeedge.events import format_ts
from storeedge.exc import OutboxFull, StoreedgeError, TelemetryDropped
from storeedge.firmware.freezer.alarms import Alarm, AlarmEngine, AlarmNotice
from storeedge.firmware.freezer.enrol import EnrolResult, enrol
from storeedge.firmware.freezer.events import (FreezerAlarm, FreezerDoor, FreezerHaccp,
                                               FreezerReadings)
from storeedge.firmware.freezer.exc import RecordFileError
from storeedge.firmware.freezer.haccp import HaccpBook, HaccpRecord
from storeedge.firmware.freezer.rules import FreezerRules
from storeedge.firmware.freezer.sampler import Batcher, ProbeStatus, Reading, Sampler
from storeedge.firmware.freezer.state import Storage, load_alarms, save_alarms

log = logging.getLogger(__name__)

DoorFn = Callable[[], bool]
MAX_RETRY = 1000


class Pending(NamedTuple):
    """An event the outbox had no room for yet (retried every pass)."""

    body: Any
    ts: float


class FreezerApp:
    """One freezer monitor device.

    Args:
        rules: units, probes, limits, policy (see :func:`config.build_rules`).
        bus: the 1-Wire bus (``SysfsBus`` or ``SimulatedBus``).
        sink: where events go and the heartbeat goes (an ``EventSink``: the DeviceService
            or a test double with ``emit`` and ``heartbeat``).
        clock: the clock (monotonic schedules reads, wall time stamps them).
        storage: the record files (:class:`Storage`), or just the HACCP record file's path.
        doors: per unit, a callable returning True while its door is open.
    """

    def __init__(self, rules: FreezerRules, bus, sink, clock, storage: Storage | str, *,
                 doors: dict[str, DoorFn] | None = None):
        self.rules, self.bus, self.sink, self.clock = rules, bus, sink, clock
        self.storage = Storage(storage) if isinstance(storage, str) else storage
        now = clock.time()
        self.engine = AlarmEngine(rules, now)
        restored = self.engine.restore(load_alarms(self.storage.alarms_path))
        if restored:
            log.warning("%d open alarm(s) restored from %s", restored, self.storage.alarms_path)
        self.book = HaccpBook(self.storage.haccp_path, rules, now, self.storage.missed_after_s)
        self.sampler = Sampler(bus, rules.probes, stale_after_s=rules.stale_after_s)
        self.batcher = Batcher(rules.batch_s)
        self.doors = dict(doors or {})
        self._door_state = {u: False for u in self.doors}
        self._lock = threading.RLock()
        self._retry: list[Pending] = []
        self.emit_failures = 0
        self.step_errors = 0

    # ------------------------------------------------------------------ live config
    def apply_rules(self, rules: FreezerRules) -> None:
        """Run with ``rules`` from now on (limits, delays, intervals, policy, HACCP times,
        batching), keeping alarms, readings and schedules; called by the live config after a
        console commit or rollback.  Raises ``NeedsRestart`` when units, probes, their ROM
        ids, door pins or the time zone change (the app restarts itself for those).
        """
        from storeedge.firmware.common.liveconfig import NeedsRestart
        old = self.rules
        same = (rules.units.keys() == old.units.keys() and rules.probes.keys() == old.probes.keys()
                and all(rules.probes[n].rom == p.rom and rules.probes[n].unit == p.unit
                        for n, p in old.probes.items())
                and all(rules.units[n].probes == u.probes and rules.units[n].door_pin == u.door_pin
                        for n, u in old.units.items())
                and rules.tz == old.tz and rules.stale_after_s == old.stale_after_s)
        if not same:
            raise NeedsRestart("units, probes, ROM ids, door pins, time zone or staleness "
                               "changed")
        with self._lock:
            self.rules = self.engine.rules = self.book.rules = rules
            self.engine.retune(rules)
            for name, probe in rules.probes.items():
                if probe.interval_s != old.probes[name].interval_s:
                    self.sampler.reschedule(name)
            self.sampler.probes = rules.probes
            self.batcher.batch_s = rules.batch_s
        log.info("freezer rules applied live")

    # ------------------------------------------------------------------ the loop
    def step(self) -> None:
        """One pass: doors, due reads, alarm timers, HACCP checks, telemetry, retries."""
        with self._lock:
            now, mono = self.clock.time(), self.clock.monotonic()
            self._retry_emits()
            self._poll_doors(now)
            for name in self.sampler.due(mono):
                self._sample(name, mono, now)
            self._notify(self.engine.tick(now))
            self._haccp(now)
            self._flush_telemetry(mono)

    def run(self, stop: threading.Event, max_sleep_s: float = 1.0) -> None:
        """Loop until ``stop`` is set (heartbeat to the watchdog each pass)."""
        log.info("freezer monitor running: %d units, %d probes", len(self.rules.units),
                 len(self.rules.probes))
        while not stop.is_set():
            try:
                self.step()
            except Exception:       # a bug in one pass must not end the monitoring ...
                self.step_errors += 1
                log.exception("freezer pass failed (%d so far); continuing", self.step_errors)
                stop.wait(max_sleep_s)
                continue            # ... but no heartbeat: systemd's watchdog restarts us
            self.sink.heartbeat()
            wait = self.sampler.next_due() - self.clock.monotonic()
            stop.wait(min(max_sleep_s, max(0.05, wait)))
        with self._lock:
            self._flush_telemetry(self.clock.monotonic(), force=True)

    def _sample(self, name: str, mono: float, now: float) -> None:
        sample = self.sampler.read(name, mono, now, busy=self.engine.busy(name))
        fault = sample.fault.value if sample.fault else None
        if fault:
            log.info("probe %s: %s", name, sample.detail)
        self.batcher.add(Reading(name, now, sample.temp_c, fault), mono)
        self._notify(self.engine.observe(name, now, sample.temp_c, fault, sample.detail))
        if self.engine.busy(name):
            self.sampler.schedule(name, mono, busy=True)

    def _poll_doors(self, now: float) -> None:
        for unit, is_open in self.doors.items():
            state = bool(is_open())
            if state != self._door_state[unit]:
                self._door_state[unit] = state
                self.engine.door(unit, state, now)
                log.info("unit %s: door %s", unit, "open" if state else "closed")
                self._emit(FreezerDoor(unit, state), now)

    def _haccp(self, now: float) -> None:
        for due in self.book.due(now):
            probes = self.rules.units[due.unit].probes
            values = {p: self.sampler.latest_good(p, now, 3 * self.rules.probes[p].interval_s)
                      for p in probes}
            rec = self.book.check(due.unit, due.scheduled_ts, values, now)
            self._emit(haccp_event(rec), now)

    def _flush_telemetry(self, mono: float, force: bool = False) -> None:
        items = self.batcher.take(mono, force)
        by_probe: dict[str, list[Reading]] = {}
        for r in items:
            by_probe.setdefault(r.probe, []).append(r)
        for probe, readings in by_probe.items():
            body = readings_event(probe, self.rules.probes[probe].unit, readings)
            self._emit(body, readings[-1].ts)

    # ------------------------------------------------------------------ events
    def _notify(self, notices: list[AlarmNotice]) -> None:
        for n in notices:
            a = n.alarm
            log.info("alarm %s %s: %s %s %s unit %s probe %s (%s)%s", a.id, n.action, a.severity,
                     a.kind, a.condition, a.unit, a.probe, a.detail,
                     f" notify {n.notify}" if n.action in ("raised", "escalated") else "")
            self._emit(alarm_event(n), n.ts)
        if notices:
            self._save_alarms()

    def _save_alarms(self) -> None:
        try:
            save_alarms(self.storage.alarms_path, self.engine.open_alarms())
        except RecordFileError as exc:
            log.error("%s (alarms stay open in memory)", exc)

    def _emit(self, body: Any, ts: float) -> None:
        try:
            self.sink.emit(body, ts=ts)
        except TelemetryDropped as exc:
            log.warning("telemetry not stored (outbox full): %s", exc)
        except OutboxFull as exc:          # alarms/HACCP: kept in memory, retried each pass
            self.emit_failures += 1
            log.error("could not store %s event, will retry: %s", type(body).__name__, exc)
            if len(self._retry) < MAX_RETRY:
                self._retry.append(Pending(body, ts))
            else:
                log.critical("%d events waiting for outbox space: %s dropped",
                             MAX_RETRY, type(body).__name__)
        except StoreedgeError as exc:      # a bug (schema, closed outbox): say it, go on
            self.emit_failures += 1
            log.error("%s event not stored: %s", type(body).__name__, exc)

    def _retry_emits(self) -> None:
        pending, self._retry = self._retry, []
        for p in pending:
            self._emit(p.body, p.ts)

    # ------------------------------------------------------------------ console API
    def probes(self) -> list[ProbeStatus]:
        """The latest read of every configured probe (no bus traffic)."""
        with self._lock:
            return self.sampler.status()

    def test_sensors(self) -> list[ProbeStatus]:
        """Read every configured probe now (blocks ~1 s per probe on real hardware); the
        reads also count as samples."""
        with self._lock:
            now, mono = self.clock.time(), self.clock.monotonic()
            for name in self.rules.probes:
                self._sample(name, mono, now)
            return self.sampler.status()

    def alarms(self) -> list[Alarm]:
        """Open alarms (not both cleared and acknowledged), oldest first."""
        with self._lock:
            return self.engine.open_alarms()

    def ack(self, alarm_id: str, by: str, note: str) -> Alarm:
        """Acknowledge alarm ``alarm_id``: ``by`` (name/initials) and ``note`` (the corrective
        action) are required.  The note is also attached to the unit's failed HACCP checks
        since the alarm was raised that have no corrective action yet."""
        with self._lock:
            now = self.clock.time()
            notice = self.engine.ack(alarm_id, by, note, now)
            self._notify([notice])
            for rec in self.book.records(since=notice.alarm.raised_ts - 43200,
                                         unit=notice.alarm.unit):
                if rec.needs_action:
                    self.haccp_action(rec.id, by, f"{note} (alarm {alarm_id})")
            return notice.alarm

    def haccp_records(self, since: float | None = None,
                      until: float | None = None) -> list[HaccpRecord]:
        with self._lock:
            return self.book.records(since, until)

    def haccp_action(self, record_id: str, initials: str, action: str) -> HaccpRecord:
        """Attach a corrective action to a failed/missed HACCP check."""
        with self._lock:
            now = self.clock.time()
            rec = self.book.acknowledge(record_id, initials, action, now)
            self._emit(haccp_event(rec), now)
            return rec

    def enrol(self, measure: bool = True) -> list[EnrolResult]:
        """Probes on the bus vs. the config, with conversion-time check (see enrol.py)."""
        with self._lock:
            return enrol(self.bus, self.rules, measure=measure)

    def register_commands(self, svc) -> None:
        """Take MQTT commands through ``svc`` (the event sink): ``ack``."""
        svc.on_command("ack", self.handle_ack_command)

    def handle_ack_command(self, cmd) -> dict:
        """``svc.on_command("ack", app.handle_ack_command)``: args ``alarm``, ``note``."""
        alarm = self.ack(str(cmd.args.get("alarm", "")), cmd.by, str(cmd.args.get("note", "")))
        return {"alarm": alarm.id, "acked_by": alarm.acked_by}


def alarm_event(n: AlarmNotice) -> FreezerAlarm:
    """The ``freezer.alarm`` body of a notice."""
    a = n.alarm
    return FreezerAlarm(a.id, n.action, a.kind, a.probe, a.unit, a.condition, a.severity,
                        a.escalation, n.notify, format_ts(a.raised_ts), a.detail, a.value_c,
                        a.limit_c, a.acked_by, a.ack_note)


def haccp_event(r: HaccpRecord) -> FreezerHaccp:
    return FreezerHaccp(r.id, r.unit, r.kind, r.result, format_ts(r.scheduled_ts), r.limit_c,
                        r.detail, r.value_c, r.action, r.initials)


def readings_event(probe: str, unit: str, readings: list[Reading]) -> FreezerReadings:
    """One probe's batch as a ``freezer.readings`` body."""
    good = [r.temp_c for r in readings if r.temp_c is not None]
    first = readings[0].ts
    return FreezerReadings(
        probe, unit, len(readings), len(readings) - len(good), format_ts(first),
        min(good) if good else None, max(good) if good else None,
        round(sum(good) / len(good), 4) if good else None, good[-1] if good else None,
        [round(r.ts - first, 3) for r in readings], [r.temp_c for r in readings],
        sorted({r.fault for r in readings if r.fault}))
