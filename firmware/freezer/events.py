"""Event types of the freezer app (named by its spec.py, see storeedge.apps).

* ``freezer.alarm`` (priority 0): raised / escalated / cleared / acked, for temperature,
  sensor-fault and sensor-silent alarms alike (``kind`` tells them apart).
* ``freezer.readings`` (priority 3): one probe's readings over a batch, with numeric summary
  fields that survive the outbox's coalescing under storage pressure.
* ``freezer.haccp`` (priority 2): a HACCP check result, or its corrective action.
* ``freezer.door`` (priority 2): a unit's door contact changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from storeedge.events import Prio, event_type


def _doc(text: str, unit: str | None = None) -> dict:
    return {"doc": text, "unit": unit} if unit else {"doc": text}


@event_type("freezer.alarm", prio=Prio.SAFETY)
@dataclass
class FreezerAlarm:
    """A freezer alarm changed: raised, escalated (repeat, not acknowledged), cleared, acked."""

    alarm_id: str = field(metadata=_doc("stable id, e.g. top-hh-1795000123; ack uses it"))
    action: str = field(metadata=_doc("raised | escalated | cleared | acked"))
    kind: str = field(metadata=_doc("temperature | sensor_fault | sensor_silent"))
    probe: str
    unit: str
    condition: str = field(metadata=_doc("LL/L/H/HH, the fault name, or silent"))
    severity: str = field(metadata=_doc("critical | warning"))
    escalation: int = field(metadata=_doc("0 when raised, +1 per unacknowledged repeat"))
    notify: str = field(metadata=_doc("who this escalation level addresses"))
    raised_at: str = field(metadata=_doc("when the alarm condition was met (RFC 3339 UTC)"))
    detail: str
    value_c: float | None = field(default=None, metadata=_doc("window value", "degC"))
    limit_c: float | None = field(default=None, metadata=_doc("the limit breached", "degC"))
    acked_by: str | None = None
    ack_note: str | None = field(default=None, metadata=_doc("corrective action taken"))


@event_type("freezer.readings", prio=Prio.TELEMETRY)
@dataclass
class FreezerReadings:
    """One probe's readings over one telemetry batch (faulty reads as null)."""

    probe: str
    unit: str
    n: int = field(metadata=_doc("reads in the batch"))
    faults: int = field(metadata=_doc("reads rejected as faulty"))
    first_at: str = field(metadata=_doc("time of the first read (RFC 3339 UTC)"))
    min_c: float | None = field(default=None, metadata=_doc("lowest trusted", "degC"))
    max_c: float | None = field(default=None, metadata=_doc("highest trusted", "degC"))
    mean_c: float | None = field(default=None, metadata=_doc("mean of trusted", "degC"))
    last_c: float | None = field(default=None, metadata=_doc("last trusted", "degC"))
    offsets_s: list[float] = field(default_factory=list,
                                   metadata=_doc("time of each read after first_at", "s"))
    temps_c: list[float | None] = field(default_factory=list,
                                        metadata=_doc("each read; null when faulty", "degC"))
    faults_seen: list[str] = field(default_factory=list, metadata=_doc("distinct fault names"))


@event_type("freezer.haccp", prio=Prio.OPERATIONAL)
@dataclass
class FreezerHaccp:
    """A HACCP check was recorded, or a corrective action attached to it."""

    record_id: str
    unit: str
    kind: str = field(metadata=_doc("frozen | chilled"))
    result: str = field(metadata=_doc("pass | fail | missed"))
    scheduled_at: str = field(metadata=_doc("the check's scheduled time (RFC 3339 UTC)"))
    limit_c: float = field(metadata=_doc("compliance limit", "degC"))
    detail: str
    value_c: float | None = field(default=None, metadata=_doc("warmest probe", "degC"))
    action: str | None = field(default=None, metadata=_doc("corrective action"))
    initials: str | None = None


@event_type("freezer.door", prio=Prio.OPERATIONAL)
@dataclass
class FreezerDoor:
    """A unit's door contact changed."""

    unit: str
    open: bool
