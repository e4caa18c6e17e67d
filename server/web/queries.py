"""What the pages show, read from the consumer's tables (SQLite or PostgreSQL, same SQL).

Times: ``received`` and ``web_*`` times are epoch seconds (float); event ``ts`` is RFC 3339
UTC with microseconds (sorts as text).  Temperatures degC.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from storeedge.events import format_ts
from storeedge.server.web.store import ALERT_WHERE, WebStore

CHECKOUT_OUTCOMES = {"scanned": "resolved: item scanned", "no_item": "resolved: no item",
                     "false_alarm": "false alarm"}
OFFLINE_AFTER_S = 300.0
ALERTS_FROM = "events"       # bench/store_page.py sets "events NOT INDEXED" for its peer


@dataclass
class Alert:
    """One alert row: an event, or a derived one (gap, offline device)."""

    key: str                 # "dev:seq" for events, "gap:dev:first" / "offline:dev"
    dev: str
    seq: int
    type: str
    ts: str
    received: float
    title: str
    body: dict = field(default_factory=dict)
    state: str = "open"      # open | resolved | acked | ack_sent
    resolution: str = ""     # outcome text, by whom


def _title(etype: str, body: dict) -> str:
    if etype.startswith("checkout."):
        level = "Escalation" if etype.endswith("escalate") else "Nudge"
        return f"{level}: {body.get('reason', '').replace('_', ' ')}"
    if etype == "freezer.alarm":
        return (f"Freezer {body.get('unit')} {body.get('condition')} "
                f"{body.get('kind', '').replace('_', ' ')} ({body.get('action')})")
    return etype.replace("door.", "Door ").replace("_", " ")


def alert_rows(ws: WebStore, limit: int = 100, after: float | None = None) -> list[Alert]:
    """Alert events newest first (``after``: only those received later, epoch s)."""
    where, params = ALERT_WHERE, []
    if after is not None:
        where += " AND received > ?"
        params.append(after)
    rows = ws.query(f"SELECT dev, seq, type, ts, received, body FROM {ALERTS_FROM} WHERE "
                    f"{where} ORDER BY received DESC LIMIT ?", (*params, limit))
    alerts = []
    for dev, seq, etype, ts, received, body in rows:
        doc = json.loads(body) if body else {}
        if etype == "freezer.alarm" and doc.get("action") not in ("raised", "escalated"):
            continue
        alerts.append(Alert(f"{dev}:{seq}", dev, seq, etype, ts, received,
                            _title(etype, doc), doc))
    _attach_state(ws, alerts)
    return alerts


def acted_since(ws: WebStore, since: float) -> tuple[list[Alert], float]:
    """Alerts resolved or acknowledged in the page after ``since`` (epoch s), with their new
    state, and the newest action time (for the next call)."""
    acts = ws.query("SELECT dev, seq, ts FROM web_alert_actions WHERE ts > ? ORDER BY ts "
                    "LIMIT 100", (since,))
    alerts = []
    for dev, seq, _ts in acts:
        rows = ws.query("SELECT type, ts, received, body FROM events WHERE dev=? AND seq=?",
                        (dev, seq))
        if rows:
            etype, ts, received, body = rows[0]
            doc = json.loads(body) if body else {}
            alerts.append(Alert(f"{dev}:{seq}", dev, seq, etype, ts, received,
                                _title(etype, doc), doc))
    _attach_state(ws, alerts)
    return alerts, max([since] + [t for _d, _s, t in acts])


def _attach_state(ws: WebStore, alerts: list[Alert]) -> None:
    """Fill ``state``/``resolution`` from the page's actions and the freezers' acks."""
    if not alerts:
        return
    oldest = min(a.received for a in alerts)
    done = {(d, s): (o, n, b, c) for d, s, o, n, b, c in ws.query(
        "SELECT dev, seq, outcome, note, by_name, cmd_id FROM web_alert_actions WHERE ts >= ?",
        (oldest - 1,))}
    acked = {}
    for body, in ws.query("SELECT body FROM events WHERE type='freezer.alarm' AND "
                          "received >= ? AND placeholder=0", (oldest - 1,)):
        doc = json.loads(body)
        if doc.get("action") == "acked":
            acked[doc["alarm_id"]] = doc
    for a in alerts:
        if a.type == "freezer.alarm" and a.body.get("alarm_id") in acked:
            ack = acked[a.body["alarm_id"]]
            a.state, a.resolution = "acked", f"acknowledged by {ack.get('acked_by')}: " \
                                             f"{ack.get('ack_note')}"
        elif (a.dev, a.seq) in done:
            outcome, note, by, cmd_id = done[(a.dev, a.seq)]
            a.state = "ack_sent" if outcome == "ack_sent" else "resolved"
            text = CHECKOUT_OUTCOMES.get(outcome, outcome.replace("_", " "))
            a.resolution = f"{text} by {by}" + (f": {note}" if note else "")
            refused = _refusal(ws, a.dev, cmd_id) if cmd_id else None
            if refused is not None:
                a.state, a.resolution = "open", f"the device refused the acknowledgement " \
                                                f"sent by {by}: {refused}"


def _refusal(ws: WebStore, dev: str, cmd_id: str) -> str | None:
    """The error of command ``cmd_id`` from the device's ``device.command`` event, if it
    failed (None: succeeded or no answer yet)."""
    for body, in ws.query("SELECT body FROM events WHERE dev=? AND type='device.command' "
                          "AND placeholder=0 ORDER BY ts DESC LIMIT 50", (dev,)):
        doc = json.loads(body)
        if doc.get("id") == cmd_id:
            return None if doc.get("ok") else str(doc.get("error") or "refused")
    return None


def derived_alerts(ws: WebStore, now: float | None = None) -> list[Alert]:
    """Open gaps and devices silent for OFFLINE_AFTER_S."""
    now = time.time() if now is None else now
    out = []
    for dev, first, last, reason, detected in ws.query(
            "SELECT dev, first_seq, last_seq, reason, detected FROM gaps "
            "WHERE resolved IS NULL ORDER BY detected DESC LIMIT 50"):
        out.append(Alert(f"gap:{dev}:{first}", dev, first, "gap", format_ts(detected), detected,
                         f"Events {first}..{last} missing ({reason})",
                         {"first": first, "last": last, "reason": reason}))
    for dev in devices(ws, now):
        if not dev.online:
            out.append(Alert(f"offline:{dev.dev}", dev.dev, 0, "offline", dev.last_ts,
                             dev.last_seen, f"{dev.kind} {dev.dev} offline",
                             {"last_seen": dev.last_ts}))
    return out


@dataclass
class Device:
    """One device row of the devices page (times epoch s)."""

    dev: str
    kind: str
    store: str
    wm: int
    duplicates: int
    last_seq: int
    last_seen: float
    last_ts: str
    version: str
    backlog: int
    open_gaps: int
    open_alarms: int
    online: bool


def devices(ws: WebStore, now: float | None = None) -> list[Device]:
    """Every device with version, last seen, backlog, watermark, open gaps and alarms."""
    now = time.time() if now is None else now
    out = []
    for dev, kind, store, wm, dups in ws.query(
            "SELECT dev, kind, store, wm, duplicates FROM devices ORDER BY dev"):
        last = ws.query("SELECT seq, received, ts FROM events WHERE dev=? AND seq = "
                        "(SELECT MAX(seq) FROM events WHERE dev=?)", (dev, dev))
        seq, seen, ts = last[0] if last else (0, 0.0, "")
        started = ws.query("SELECT body FROM events WHERE dev=? AND type='device.started' "
                           "ORDER BY ts DESC LIMIT 1", (dev,))
        version = json.loads(started[0][0]).get("version", "?") if started else "?"
        gaps = ws.query("SELECT COUNT(*) FROM gaps WHERE dev=? AND resolved IS NULL", (dev,))
        out.append(Device(dev, kind, store, wm, dups, seq, seen, ts, version, seq - wm,
                          gaps[0][0], _open_alarms(ws, dev), now - seen < OFFLINE_AFTER_S))
    return out


def _open_alarms(ws: WebStore, dev: str) -> int:
    state: dict[str, str] = {}
    for body, in ws.query("SELECT body FROM events WHERE dev=? AND type='freezer.alarm' "
                          "ORDER BY ts, seq", (dev,)):
        doc = json.loads(body)
        if doc["action"] in ("raised", "escalated"):
            state.setdefault(doc["alarm_id"], "open")
        else:
            state[doc["alarm_id"]] = doc["action"]
    return sum(1 for s in state.values() if s == "open")


def rejects(ws: WebStore) -> list[tuple[str, int]]:
    """The store server's rejection counters ``(reason, count)``."""
    return ws.query("SELECT reason, count FROM rejects ORDER BY reason")


def since_ts(seconds: float, now: float | None = None) -> str:
    """The RFC 3339 time ``seconds`` ago."""
    return format_ts((time.time() if now is None else now) - seconds)
