"""Freezer page: one chart per cabinet (downsampled in SQL, drawn as SVG), HACCP log + exports.

A chart reads one cabinet's ``freezer.readings`` over the range and lets the database group
them into at most ~240 time buckets per probe (min / max / mean per bucket), so a 30-day chart
costs one indexed range scan and returns a few hundred rows.
"""
from __future__ import annotations

import csv
import io
import json
import re
import time
from typing import NamedTuple

from PIL import Image, ImageDraw
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storeedge.events import parse_ts
from storeedge.server.web import rollup, svg
from storeedge.server.web.app import page, render
from storeedge.server.web.exc import FormError
from storeedge.server.web.queries import since_ts
from storeedge.server.web.store import Session

RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
BUCKETS = 240
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HACCP_COLUMNS = ("record_id", "dev", "unit", "kind", "scheduled", "value_c", "limit_c",
                 "result", "detail", "action", "initials")


class Cabinet(NamedTuple):
    dev: str
    unit: str


class Bucket(NamedTuple):
    """One probe's readings in one time bucket (``t`` epoch s of the bucket start, degC)."""

    probe: str
    t: float
    lo: float | None
    hi: float | None
    mean: float | None


def _js(db, path: str) -> str:
    """SQL for a JSON text field of ``body``."""
    return f"(body::json->>'{path}')" if db.is_pg else f"json_extract(body, '$.{path}')"


def cabinets(ws) -> list[Cabinet]:
    """Every (device, unit) with a HACCP record or readings in the last hour."""
    db = ws.db
    rows = ws.query(f"SELECT DISTINCT dev, {_js(db, 'unit')} FROM events WHERE "
                    f"type='freezer.haccp' OR (type='freezer.readings' AND ts >= ?) "
                    f"ORDER BY 1, 2", (since_ts(3600),))
    return [Cabinet(d, u) for d, u in rows if u]


def chart_buckets(ws, cab: Cabinet, seconds: int, now: float) -> list[Bucket]:
    """Per-probe min/max/mean of ``cab`` over the last ``seconds``, in <= BUCKETS buckets.

    Up to a day is grouped straight from the events; longer ranges from the 30-minute rollup
    (refreshed first) plus the raw readings above its cursor.
    """
    db, width = ws.db, max(1, seconds // BUCKETS)
    t0 = now - seconds
    acc: dict[tuple[str, int], list] = {}
    if seconds <= 86400:
        _merge(acc, ws.query(rollup.grouped_sql(db, width, "dev=? AND ts >= ?"),
                             (cab.dev, since_ts(seconds, now))), cab.unit)
        return _buckets(acc, width)
    width -= width % rollup.ROLLUP_S
    upto = rollup.refresh(ws, cab.dev)
    rows = ws.query("SELECT unit, probe, FLOOR(b * ? / ?), MIN(lo), MAX(hi), SUM(total), "
                    "SUM(n) FROM web_rollup WHERE dev=? AND unit=? AND b >= ? GROUP BY 1, 2, 3",
                    (rollup.ROLLUP_S, width, cab.dev, cab.unit, int(t0 // rollup.ROLLUP_S)))
    _merge(acc, rows, cab.unit)
    _merge(acc, ws.query(rollup.grouped_sql(db, width, "dev=? AND seq > ?"), (cab.dev, upto)),
           cab.unit)
    return [b for b in _buckets(acc, width) if b.t >= t0 - width]


def _merge(acc: dict, rows, unit: str) -> None:
    for u, probe, b, lo, hi, total, n in rows:
        if u != unit or probe is None:
            continue
        cur = acc.setdefault((probe, int(b)), [None, None, 0.0, 0])
        lo, hi = (None if lo is None else float(lo)), (None if hi is None else float(hi))
        cur[0] = lo if cur[0] is None else (cur[0] if lo is None else min(cur[0], lo))
        cur[1] = hi if cur[1] is None else (cur[1] if hi is None else max(cur[1], hi))
        cur[2] += float(total or 0.0)          # PostgreSQL sums are Decimal
        cur[3] += int(n or 0)


def _buckets(acc: dict, width: int) -> list[Bucket]:
    return [Bucket(p, float(b) * width, lo, hi, total / n if n else None)
            for (p, b), (lo, hi, total, n) in sorted(acc.items())]


def chart_marks(ws, cab: Cabinet, seconds: int, now: float) -> tuple[list, list]:
    """Alarm and door-open marks ``(t, label)`` and limit lines (degC) of ``cab`` over the
    range (defrosts are not marked: their schedule is device config, not an event)."""
    marks, limits = [], set()
    for ts, body in ws.query("SELECT ts, body FROM events WHERE dev=? AND type='freezer.alarm' "
                             "AND ts >= ? ORDER BY ts", (cab.dev, since_ts(seconds, now))):
        doc = json.loads(body)
        if doc.get("unit") != cab.unit:
            continue
        if doc.get("limit_c") is not None:
            limits.add(float(doc["limit_c"]))
        if doc.get("action") == "raised":
            marks.append((parse_ts(ts), f"{doc.get('condition')} {doc.get('probe')}"))
    for ts, body in ws.query("SELECT ts, body FROM events WHERE dev=? AND type='freezer.door' "
                             "AND ts >= ? ORDER BY ts", (cab.dev, since_ts(seconds, now))):
        doc = json.loads(body)
        if doc.get("unit") == cab.unit and doc.get("open"):
            marks.append((parse_ts(ts), "door open"))
    for body, in ws.query("SELECT body FROM events WHERE dev=? AND type='freezer.haccp' "
                          "ORDER BY ts DESC LIMIT 1", (cab.dev,)):
        limits.add(float(json.loads(body)["limit_c"]))
    return marks, sorted(limits)


def _chart_svg(ws, dev: str, unit: str, rng: str, width: int = 720) -> str:
    now, seconds = time.time(), RANGES[rng]
    cab = Cabinet(dev, unit)
    buckets = chart_buckets(ws, cab, seconds, now)
    marks, limits = chart_marks(ws, cab, seconds, now)
    return svg.chart(buckets, marks, limits, (now - seconds, now), f"{dev} {unit} ({rng})",
                     width)


def _range(request: Request) -> str:
    rng = request.query_params.get("range", "24h")
    if rng not in RANGES:
        raise FormError(f"range: one of {', '.join(RANGES)}")
    return rng


@page("freezers")
async def freezers_page(request: Request, sess: Session) -> Response:
    ws, rng = request.app.state.ctx.store, _range(request)
    cabs = await run_in_threadpool(cabinets, ws)
    haccp = await run_in_threadpool(haccp_rows, ws, 50)
    return render(request, "freezers.html", {"sess": sess, "title": "Freezers", "range": rng,
                                             "ranges": list(RANGES), "cabinets": cabs,
                                             "haccp": haccp})


@page("freezers")
async def chart(request: Request, sess: Session) -> Response:
    dev, unit = request.path_params["dev"], request.path_params["unit"]
    if not (ID_RE.fullmatch(dev) and ID_RE.fullmatch(unit)):
        raise FormError("cabinet: unknown")
    try:
        width = int(request.query_params.get("w", "720"))
    except ValueError:
        raise FormError("w: a width in px") from None
    body = await run_in_threadpool(_chart_svg, request.app.state.ctx.store, dev, unit,
                                   _range(request), width)
    return Response(body, media_type="image/svg+xml", headers={"cache-control": "no-store"})


def haccp_rows(ws, limit: int = 5000) -> list[dict]:
    """The HACCP records (latest state of each record id), newest first."""
    latest: dict[str, dict] = {}
    for dev, body in ws.query("SELECT dev, body FROM events WHERE type='freezer.haccp' AND "
                              "placeholder=0 ORDER BY ts DESC, seq DESC LIMIT ?", (limit * 2,)):
        doc = json.loads(body)
        key = f"{dev}/{doc['record_id']}"
        if key not in latest or (doc.get("action") and not latest[key].get("action")):
            latest[key] = {"dev": dev, **doc}
    rows = sorted(latest.values(), key=lambda r: r["scheduled_at"], reverse=True)
    return rows[:limit]


def haccp_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HACCP_COLUMNS)
    for r in rows:
        writer.writerow([_cell(r.get(c if c != "scheduled" else "scheduled_at"))
                         for c in HACCP_COLUMNS])
    return out.getvalue()


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def haccp_pdf(rows: list[dict]) -> bytes:
    """The HACCP log as a PDF (A4 pages rendered at 100 dpi, 60 lines each)."""
    lines = [" | ".join(HACCP_COLUMNS)] + [" | ".join(_cell(r.get(
        c if c != "scheduled" else "scheduled_at")) for c in HACCP_COLUMNS) for r in rows]
    pages = []
    for start in range(0, max(1, len(lines)), 60):
        img = Image.new("L", (827, 1169), 255)
        draw = ImageDraw.Draw(img)
        draw.text((30, 20), "HACCP temperature log", fill=0)
        for i, line in enumerate(lines[start:start + 60]):
            draw.text((30, 50 + i * 18), line[:140], fill=0)
        pages.append(img)
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], resolution=100)
    return buf.getvalue()


@page("freezers")
async def haccp_export(request: Request, sess: Session) -> Response:
    ws = request.app.state.ctx.store
    rows = await run_in_threadpool(haccp_rows, ws)
    await run_in_threadpool(ws.audit, sess.name, "haccp.export", request.url.path,
                            f"{len(rows)} records")
    if request.url.path.endswith(".pdf"):
        return Response(await run_in_threadpool(haccp_pdf, rows), media_type="application/pdf",
                        headers={"content-disposition": "attachment; filename=haccp.pdf"})
    return Response(haccp_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": "attachment; filename=haccp.csv"})


def routes() -> list[Route]:
    return [Route("/freezers", freezers_page),
            Route("/freezers/chart/{dev}/{unit}.svg", chart),
            Route("/freezers/haccp.csv", haccp_export), Route("/freezers/haccp.pdf", haccp_export)]
