"""HACCP temperature records: scheduled pass/fail checks per unit, corrective actions, CSV.

Twice a day by default (``06:00`` and ``18:00`` store time) each unit is checked against its
compliance limit (chilled <= 5 degC, frozen <= -18 degC): the record holds the actual values,
the time, and the result.  A failed or missed check is closed by a corrective action with the
initials of who took it.

Records live in an append-only JSON-lines file (one ``check`` line per record, one ``action``
line per corrective action, each fsynced), so nothing is ever rewritten: an inspector sees
exactly what was recorded and when.  A torn last line after a power cut is skipped with a
warning; everything before it is kept.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from typing import IO, NamedTuple

from storeedge.firmware.freezer.exc import AckError, RecordFileError, UnknownRecord
from storeedge.firmware.freezer.rules import FreezerRules, last_occurrence

log = logging.getLogger(__name__)

CSV_COLUMNS = ("record_id", "unit", "kind", "scheduled_local", "checked_utc", "value_c",
               "limit_c", "result", "detail", "probes_c", "corrective_action", "initials",
               "action_utc")
MAX_CATCH_UP_DAYS = 14


class DueCheck(NamedTuple):
    """A check to take: ``unit`` at ``scheduled_ts`` (epoch s)."""

    unit: str
    scheduled_ts: float


@dataclass(frozen=True)
class HaccpRecord:
    """One check of one unit.  Times epoch seconds, temperatures degC.

    ``result`` is ``pass``, ``fail`` (too warm, or no trusted reading) or ``missed`` (the
    monitor was not running at the scheduled time).
    """

    id: str
    unit: str
    kind: str
    scheduled_ts: float
    checked_ts: float
    value_c: float | None              # warmest trusted probe (None: no trusted read, missed)
    limit_c: float
    result: str
    detail: str
    probes: dict                       # probe name -> its latest trusted degC (None: none)
    action: str | None = None
    initials: str | None = None
    action_ts: float | None = None

    @property
    def needs_action(self) -> bool:
        return self.result != "pass" and self.action is None


class HaccpBook:
    """The HACCP records of this device, kept in ``path``.

    Args:
        path: the JSON-lines record file (created with its folder if missing).
        rules: units, check times and time zone.
        start_ts: epoch seconds the monitor started (a unit without records starts here; for
            the others, every check since their last record is due, missed ones included).
        missed_after_s: a check taken later than this after its time is recorded ``missed``.
    """

    def __init__(self, path: str | os.PathLike, rules: FreezerRules, start_ts: float,
                 missed_after_s: float = 1800.0):
        self.path, self.rules = os.fspath(path), rules
        self.missed_after_s = missed_after_s
        self._records: dict[str, HaccpRecord] = {}
        self._torn = False          # the file ends in a partial line (power cut mid-write)
        self._load()
        # checks after the last record are due (missed ones are recorded as such); a unit
        # with no record yet starts now
        last: dict[str, float] = {}
        for rec in self._records.values():
            last[rec.unit] = max(last.get(rec.unit, rec.scheduled_ts), rec.scheduled_ts)
        self._after = {u: last.get(u, start_ts) for u in rules.units}

    # ------------------------------------------------------------------ scheduling
    def due(self, now: float) -> list[DueCheck]:
        """The checks due by ``now`` (epoch s) and not yet recorded, oldest first."""
        out = []
        for unit, after in self._after.items():
            for ts in self._occurrences(max(after, now - MAX_CATCH_UP_DAYS * 86400), now):
                if ts > after:
                    out.append(DueCheck(unit, ts))
        return sorted(out, key=lambda d: d.scheduled_ts)

    def _occurrences(self, start: float, end: float) -> list[float]:
        found, t = set(), end
        while t > start:
            for hhmm in self.rules.haccp_checks:
                ts = last_occurrence(hhmm, t, self.rules.tz)
                if start < ts <= end:
                    found.add(ts)
            t -= 86400
        return sorted(found)

    def check(self, unit: str, scheduled_ts: float, values: dict[str, float | None],
              now: float) -> HaccpRecord:
        """Record the check of ``unit`` due at ``scheduled_ts`` with the probes' latest trusted
        values (degC, None when a probe has none); returns the record."""
        u = self.rules.units[unit]
        trusted = [v for v in values.values() if v is not None]
        value = max(trusted) if trusted else None
        if now - scheduled_ts > self.missed_after_s:
            result, detail, value = "missed", "the monitor was not running at this time", None
        elif value is None:
            result, detail = "fail", "no trusted reading from any probe of the unit"
        elif value <= u.compliance_max_c:
            result, detail = "pass", f"{value:.2f} <= {u.compliance_max_c:g} degC"
        else:
            result, detail = "fail", f"{value:.2f} > {u.compliance_max_c:g} degC"
        local = _dt.datetime.fromtimestamp(scheduled_ts, self.rules.tz)
        rec = HaccpRecord(f"{unit}-{local:%Y%m%d-%H%M}", unit, u.kind, scheduled_ts, now, value,
                          u.compliance_max_c, result, detail, dict(values))
        self._append({"type": "check", **asdict(rec)})
        self._records[rec.id] = rec
        self._after[unit] = max(self._after[unit], scheduled_ts)
        (log.info if result == "pass" else log.warning)("HACCP %s: %s (%s)", rec.id, result,
                                                        detail)
        return rec

    # ------------------------------------------------------------------ corrective actions
    def acknowledge(self, record_id: str, initials: str, action: str, ts: float) -> HaccpRecord:
        """Attach the corrective ``action`` taken and the ``initials`` of who took it."""
        rec = self._records.get(record_id)
        if rec is None:
            raise UnknownRecord(f"no HACCP record {record_id!r}")
        if not initials or not initials.strip() or not action or not action.strip():
            raise AckError("a corrective action needs initials and a description")
        if rec.result == "pass":
            raise AckError(f"HACCP record {record_id} passed: there is nothing to correct")
        if rec.action is not None:
            raise AckError(f"HACCP record {record_id} already has a corrective action by "
                           f"{rec.initials}")
        rec = replace(rec, action=action.strip(), initials=initials.strip(), action_ts=ts)
        self._append({"type": "action", "id": record_id, "action": rec.action,
                      "initials": rec.initials, "ts": ts})
        self._records[record_id] = rec
        return rec

    def records(self, since: float | None = None, until: float | None = None,
                unit: str | None = None) -> list[HaccpRecord]:
        """Records scheduled in ``[since, until)`` (epoch s), oldest first."""
        return sorted((r for r in self._records.values()
                       if (since is None or r.scheduled_ts >= since)
                       and (until is None or r.scheduled_ts < until)
                       and (unit is None or r.unit == unit)), key=lambda r: r.scheduled_ts)

    def export_csv(self, out: IO[str], **filters) -> int:
        """Write the records (``since``/``until``/``unit`` filters) as CSV; returns rows."""
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        rows = self.records(**filters)
        for r in rows:
            writer.writerow(self._csv_row(r))
        return len(rows)

    def _csv_row(self, r: HaccpRecord) -> list:
        def utc(ts):
            return "" if ts is None else _dt.datetime.fromtimestamp(
                ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        local = _dt.datetime.fromtimestamp(r.scheduled_ts, self.rules.tz).isoformat()
        value = "" if r.value_c is None else f"{r.value_c:.2f}"
        probes = " ".join(f"{p}={'-' if v is None else f'{v:.2f}'}"
                          for p, v in sorted(r.probes.items()))
        return [r.id, r.unit, r.kind, local, utc(r.checked_ts), value, f"{r.limit_c:g}",
                r.result, r.detail, probes, r.action or "", r.initials or "", utc(r.action_ts)]

    # ------------------------------------------------------------------ storage
    def _append(self, doc: dict) -> None:
        line = json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"
        if self._torn:              # start on a fresh line: never glue onto a torn one
            line, self._torn = "\n" + line, False
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise RecordFileError(f"cannot write HACCP record to {self.path}: {exc}") from exc

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise RecordFileError(f"cannot read HACCP records from {self.path}: {exc}") from exc
        self._torn = bool(lines) and not lines[-1].endswith("\n")
        for n, line in enumerate(lines, 1):
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s line %d unreadable (%s): skipped, the rest is kept",
                            self.path, n, exc)

    def _apply(self, doc: dict) -> None:
        kind = doc.pop("type")
        if kind == "check":
            rec = HaccpRecord(**doc)
            self._records[rec.id] = rec
        elif kind == "action":
            rec = self._records[doc["id"]]
            self._records[rec.id] = replace(rec, action=doc["action"],
                                            initials=doc["initials"], action_ts=doc["ts"])
        else:
            raise ValueError(f"unknown record type {kind!r}")
