"""The store's own figures: per lane and day (or ISO week), alerts per 100 transactions and the
false-alarm share from associates' feedback; CSV export so a chain can compare lanes and
firmware versions on its own footage."""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from storeedge.server.web.app import page, render
from storeedge.server.web.exc import FormError
from storeedge.server.web.queries import since_ts
from storeedge.server.web.store import Session

PERIODS = {"day": 10, "week": 0}
COLUMNS = ("lane", "version", "period", "transactions", "alerts", "alerts_per_100",
           "feedback", "false_alarms", "false_share")


@dataclass
class LaneFigures:
    """One lane in one period; shares are fractions (0..1), None without data."""

    lane: str
    version: str
    period: str
    transactions: int = 0
    alerts: int = 0
    feedback: int = 0
    false_alarms: int = 0

    @property
    def alerts_per_100(self) -> float | None:
        return 100.0 * self.alerts / self.transactions if self.transactions else None

    @property
    def false_share(self) -> float | None:
        return self.false_alarms / self.feedback if self.feedback else None


def _period(day: str, per: str) -> str:
    if per == "day":
        return day
    iso = _dt.date.fromisoformat(day).isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def lane_figures(ws, days: int, per: str) -> list[LaneFigures]:
    """Figures of every lane over the last ``days`` days, per day or ISO week."""
    start = since_ts(days * 86400)
    versions = _versions(ws)
    out: dict[tuple[str, str], LaneFigures] = {}

    def row(dev: str, day: str) -> LaneFigures:
        key = (dev, _period(day, per))
        if key not in out:
            out[key] = LaneFigures(dev, versions.get(dev, "?"), key[1])
        return out[key]
    for dev, day, etype, n in ws.query(
            "SELECT dev, SUBSTR(ts, 1, 10), type, COUNT(*) FROM events WHERE type IN "
            "('checkout.transaction', 'checkout.nudge', 'checkout.escalate') AND ts >= ? "
            "GROUP BY 1, 2, 3", (start,)):
        fig = row(dev, day)
        if etype == "checkout.transaction":
            fig.transactions += n
        else:
            fig.alerts += n
    for dev, day, outcome, n in ws.query(
            "SELECT e.dev, SUBSTR(e.ts, 1, 10), a.outcome, COUNT(*) FROM web_alert_actions a "
            "JOIN events e ON e.dev = a.dev AND e.seq = a.seq WHERE e.ts >= ? AND e.type IN "
            "('checkout.nudge', 'checkout.escalate') GROUP BY 1, 2, 3", (start,)):
        fig = row(dev, day)
        fig.feedback += n
        fig.false_alarms += n if outcome == "false_alarm" else 0
    return sorted(out.values(), key=lambda f: (f.period, f.lane), reverse=True)


def _versions(ws) -> dict[str, str]:
    out = {}
    for dev, body in ws.query("SELECT dev, body FROM events WHERE type='device.started' AND "
                              "kind='checkout' ORDER BY ts"):
        out[dev] = json.loads(body).get("version", "?")
    return out


def figures_csv(rows: list[LaneFigures]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for f in rows:
        per100 = "" if f.alerts_per_100 is None else f"{f.alerts_per_100:.2f}"
        share = "" if f.false_share is None else f"{f.false_share:.3f}"
        writer.writerow([f.lane, f.version, f.period, f.transactions, f.alerts, per100,
                         f.feedback, f.false_alarms, share])
    return buf.getvalue()


def _args(request: Request) -> tuple[int, str]:
    per = request.query_params.get("per", "day")
    if per not in PERIODS:
        raise FormError("per: day or week")
    try:
        days = int(request.query_params.get("days", "14"))
    except ValueError:
        raise FormError("days: a whole number from 1 to 366") from None
    if not 1 <= days <= 366:
        raise FormError("days: a whole number from 1 to 366")
    return days, per


@page("figures")
async def figures_page(request: Request, sess: Session) -> Response:
    days, per = _args(request)
    rows = await run_in_threadpool(lane_figures, request.app.state.ctx.store, days, per)
    return render(request, "figures.html", {"sess": sess, "title": "Figures", "rows": rows,
                                            "days": days, "per": per})


@page("figures")
async def figures_export(request: Request, sess: Session) -> Response:
    days, per = _args(request)
    ws = request.app.state.ctx.store
    rows = await run_in_threadpool(lane_figures, ws, days, per)
    await run_in_threadpool(ws.audit, sess.name, "figures.export", per, f"{days} days")
    return Response(figures_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": "attachment; filename=lane-figures.csv"})


def routes() -> list[Route]:
    return [Route("/figures", figures_page), Route("/figures.csv", figures_export)]
