"""Helpers for the store-page tests: a page on a real database, events written like the consumer."""
from __future__ import annotations

import json
import re
import time
import uuid

from storeedge.config import config_from_dict
from storeedge.events import format_ts
from storeedge.server.config import StoreServerConfig
from storeedge.server.db import Row
from storeedge.server.web.serve import build_context

PASSWORD = "correct horse battery"
STORE = "s0042"


def page_context(db_url: str, link=None, **web):
    """A WebContext on ``db_url`` (no broker unless ``link``) with three accounts."""
    cfg = config_from_dict({"server": {"db": db_url}, "web": {"enabled": True, **web},
                            "security": {"insecure": True}}, StoreServerConfig)
    ctx = build_context(cfg, link)
    for name, role in (("mara", "manager"), ("ali", "associate"), ("tess", "technician")):
        ctx.auth.add_user(name, role, PASSWORD, by="test")
    return ctx


def put_events(db, dev: str, kind: str, events: list[tuple[str, dict]],
               ts: float | None = None, step_s: float = 1.0) -> list[int]:
    """Store ``(type, body)`` events of ``dev`` as the consumer would; returns their seqs."""
    ts = time.time() if ts is None else ts
    with db.lock:
        txn = db.transactions()
        txn.begin()
        db.ensure_device(dev, kind, STORE)
        top = db._exec("SELECT MAX(seq) FROM events WHERE dev=?", (dev,)).fetchone()[0] or 0
        rows = [Row(dev, top + i + 1, kind, STORE, etype, 0 if "alarm" in etype else 1,
                    format_ts(ts + i * step_s), time.time(), json.dumps(body))
                for i, (etype, body) in enumerate(events)]
        db.insert_events(rows)
        db.advance_watermark(dev)
        txn.commit()
    return [r.seq for r in rows]


def escalation(code: str = "4006381333931", pos_line: str | None = None) -> dict:
    """A ``checkout.escalate`` body (missed scan) with evidence."""
    return {"txn": f"t-{uuid.uuid4().hex[:6]}", "reason": "missed_scan", "incident": 2,
            "pass_id": 7, "latency_s": 0.4,
            "evidence": {"keyframe_jpeg": None, "code_seen": code, "code_seen_format": "EAN-13",
                         "pos_line": pos_line, "pass_start": time.time() - 3,
                         "pass_end": time.time() - 1}}


def login(client, name: str, password: str = PASSWORD):
    return client.post("/login", data={"name": name, "password": password})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def refusal(html: str) -> str:
    """The one-line message of a refusal page."""
    m = re.search(r'id="(?:message|error)">([^<]*)<', html)
    return m.group(1) if m else ""
