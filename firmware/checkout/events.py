"""Event types of the checkout lane app (named by its spec.py, see storeedge.apps).

Times in bodies are wall-clock epoch seconds of the device (the envelope ``ts`` is the event's
own time); durations in seconds. ``keyframe_jpeg`` is a base64 JPEG of the item (<= 160 px on
its longest side, typically 3-8 kB).
"""
from __future__ import annotations

from dataclasses import dataclass

from storeedge.events import Prio, doc_field, event_type


@dataclass
class Evidence:
    """What an associate needs to judge an alert."""

    keyframe_jpeg: str | None = doc_field("base64 JPEG of the item at the scanner, or null")
    code_seen: str | None = doc_field("code the camera read on the item (decoded text), or null")
    code_seen_format: str | None = doc_field("symbology of code_seen, e.g. EAN-13")
    pos_line: str | None = doc_field("the POS line matched to the pass (raw, printable), or null")
    pass_start: float = doc_field("when the item entered the view", "s since epoch")
    pass_end: float = doc_field("when the item reached the bagging area", "s since epoch")


@dataclass
class _Alert:
    """The body both alert levels share."""

    txn: str = doc_field("transaction id")
    reason: str = doc_field("missed_scan or ticket_switch")
    incident: int = doc_field("incident number within the transaction", "count")
    pass_id: int = doc_field("item pass id")
    latency_s: float = doc_field("alert time minus pass end", "s")
    evidence: Evidence = doc_field("evidence")


@event_type("checkout.nudge", prio=Prio.LOSS)
class Nudge(_Alert):
    """First incident of a transaction: the self-checkout screen asks the shopper to rescan."""


@event_type("checkout.escalate", prio=Prio.LOSS)
class Escalate(_Alert):
    """A repeat incident (or a ticket switch): an associate is called to the lane."""


@event_type("checkout.scan_note", prio=Prio.OPERATIONAL)
class ScanNote:
    """Informational: a scan with no item pass seen, or a double scan of one item."""

    txn: str = doc_field("transaction id")
    kind: str = doc_field("no_pass or double")
    pos_line: str = doc_field("the POS line (raw, printable)")
    scan_time: float = doc_field("when the line arrived", "s since epoch")


@event_type("checkout.blind", prio=Prio.OPERATIONAL)
class Blind:
    """The camera delivered no frames: nothing is alerted for this interval."""

    start: float = doc_field("last frame before the gap", "s since epoch")
    end: float = doc_field("first frame after the gap", "s since epoch")
    duration_s: float = doc_field("length of the gap", "s")


@event_type("checkout.pos_rejected", prio=Prio.OPERATIONAL)
class PosRejected:
    """POS lines rejected since the last such event (at most one event per interval)."""

    count: int = doc_field("lines rejected since the previous event", "lines")
    total: int = doc_field("lines rejected since start", "lines")
    last_reason: str = doc_field("why the last one was rejected")
    last_sample: str = doc_field("the last rejected line, escaped, at most 40 characters")


@event_type("checkout.transaction", prio=Prio.OPERATIONAL)
class Transaction:
    """Summary of a finished transaction."""

    txn: str = doc_field("transaction id")
    passes: int = doc_field("item passes seen", "count")
    scans: int = doc_field("POS scans", "count")
    missed: int = doc_field("missed-scan incidents", "count")
    switches: int = doc_field("ticket-switch incidents", "count")
    nudges: int = doc_field("nudges sent", "count")
    escalations: int = doc_field("escalations sent", "count")
    blind_s: float = doc_field("time the camera was blind during the transaction", "s")
    frames_dropped: int = doc_field("frames dropped by the bounded queue since start", "frames")


@event_type("checkout.pass", prio=Prio.TELEMETRY)
class Pass:
    """An item pass and how it matched the POS (telemetry)."""

    txn: str = doc_field("transaction id")
    pass_id: int = doc_field("item pass id")
    start: float = doc_field("entered the view", "s since epoch")
    end: float = doc_field("reached the bagging area", "s since epoch")
    codes_seen: list[str] = doc_field("item keys read on the item")
    outcome: str = doc_field("ok, missed or switch (one per code slot, comma separated)")


@event_type("checkout.lane_status", prio=Prio.OPERATIONAL)
class LaneStatus:
    """The lane's state: sent when it changes (POS stalled or back, image degraded or back)
    and after every transaction (with the learned POS timing)."""

    state: str = doc_field("ok, pos_stalled or degraded (degraded wins when both)")
    reason: str = doc_field("why (empty when ok): e.g. 'no POS line for 31 s while 3 items "
                            "passed', 'image noise sigma 14.2 at luma 35'")
    pos_delay_s: float | None = doc_field(
        "learned POS delay: scan arrival minus the middle of the item's time over the scanner "
        "(median), or null", "s")
    pos_spread_s: float | None = doc_field("spread of that delay (scaled MAD), or null", "s")
    match_window_s: float = doc_field("a pass waits this long after leaving the scanner for "
                                      "its scan", "s")
    timing_samples: int = doc_field("matched passes the timing was learned from", "count")
    noise_sigma: float = doc_field("estimated image noise (standard deviation)", "grey levels")
    luma: float = doc_field("mean image brightness", "grey levels")
    phantom_codes: int = doc_field("codes read only once (possible misreads), not alerted, "
                                   "since start", "count")
    unverified_passes: int = doc_field("passes not judged (POS stalled or image degraded) "
                                       "since start", "count")
