"""Event types of the freezer app (named by its spec.py, see storeedge.apps).

* ``freezer.alarm`` (priority 0): raised / escalated / cleared / acked, for temperature,
  sensor-fault and sensor-silent alarms alike (``kind`` tells them apart).
* ``freezer.readings`` (priority 3): one probe's readings over a batch, with numeric summary
  fields that survive the outbox's coalescing under storage pressure.
* ``freezer.haccp`` (priority 2): a HACCP check result, or its corrective action.
* ``freezer.door`` (priority 2): a unit's door contact changed.
"""
from __future__ import annotations

from storeedge.events import Prio, doc_field, event_type


@event_type("freezer.alarm", prio=Prio.SAFETY)
class FreezerAlarm:
    """A freezer alarm changed: raised, escalated (repeat, not acknowledged), cleared, acked."""

    alarm_id: str = doc_field("stable id, e.g. top-hh-1795000123; ack uses it")
    action: str = doc_field("raised | escalated | cleared | acked")
    kind: str = doc_field("temperature | sensor_fault | sensor_silent")
    probe: str
    unit: str
    condition: str = doc_field("LL/L/H/HH, the fault name, or silent")
    severity: str = doc_field("critical | warning")
    escalation: int = doc_field("0 when raised, +1 per unacknowledged repeat")
    notify: str = doc_field("who this escalation level addresses")
    raised_at: str = doc_field("when the alarm condition was met (RFC 3339 UTC)")
    detail: str
    value_c: float | None = doc_field("window value", "degC", default=None)
    limit_c: float | None = doc_field("the limit breached", "degC", default=None)
    acked_by: str | None = None
    ack_note: str | None = doc_field("corrective action taken", default=None)


@event_type("freezer.readings", prio=Prio.TELEMETRY)
class FreezerReadings:
    """One probe's readings over one telemetry batch (faulty reads as null)."""

    probe: str
    unit: str
    n: int = doc_field("reads in the batch")
    faults: int = doc_field("reads rejected as faulty")
    first_at: str = doc_field("time of the first read (RFC 3339 UTC)")
    min_c: float | None = doc_field("lowest trusted", "degC", default=None)
    max_c: float | None = doc_field("highest trusted", "degC", default=None)
    mean_c: float | None = doc_field("mean of trusted", "degC", default=None)
    last_c: float | None = doc_field("last trusted", "degC", default=None)
    offsets_s: list[float] = doc_field("time of each read after first_at", "s",
                                       default_factory=list)
    temps_c: list[float | None] = doc_field("each read; null when faulty", "degC",
                                            default_factory=list)
    faults_seen: list[str] = doc_field("distinct fault names", default_factory=list)


@event_type("freezer.haccp", prio=Prio.OPERATIONAL)
class FreezerHaccp:
    """A HACCP check was recorded, or a corrective action attached to it."""

    record_id: str
    unit: str
    kind: str = doc_field("frozen | chilled")
    result: str = doc_field("pass | fail | missed")
    scheduled_at: str = doc_field("the check's scheduled time (RFC 3339 UTC)")
    limit_c: float = doc_field("compliance limit", "degC")
    detail: str
    value_c: float | None = doc_field("warmest probe", "degC", default=None)
    action: str | None = doc_field("corrective action", default=None)
    initials: str | None = None


@event_type("freezer.door", prio=Prio.OPERATIONAL)
class FreezerDoor:
    """A unit's door contact changed."""

    unit: str
    open: bool
