"""The pages: alerts (live), freezers, dock door, devices, figures, people, audit."""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from storeedge.server.web import door, figures, forms, freezers, queries
from storeedge.server.web.app import COOKIE, page, render, templates
from storeedge.server.web.auth import ROLES
from storeedge.server.web.commands import DeviceRef
from storeedge.server.web.exc import FormError
from storeedge.server.web.store import Session

INITIALS_RE = re.compile(r"[A-Za-z][A-Za-z.]{0,7}")
DERIVED_EVERY_S = 5.0
KEY_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}:[0-9]{1,18}")


def ctx_of(request: Request):
    return request.app.state.ctx


# ---------------------------------------------------------------------- alerts
def _alerts_data(ctx) -> dict:
    alerts = queries.alert_rows(ctx.store, 100)
    derived = queries.derived_alerts(ctx.store)
    cursor = max((a.received for a in alerts), default=0.0)
    return {"alerts": alerts, "derived": derived, "cursor": cursor}


@page("alerts")
async def alerts_page(request: Request, sess: Session) -> Response:
    data = await run_in_threadpool(_alerts_data, ctx_of(request))
    return render(request, "alerts.html", {"sess": sess, "title": "Alerts",
                                           "flash": request.query_params.get("done", ""),
                                           **data})


@page("alerts")
async def alerts_stream(request: Request, sess: Session) -> Response:
    """Server-sent events: each new alert as a rendered card (``event: alert``)."""
    ctx = ctx_of(request)
    try:
        cursor = float(request.query_params.get("after", "0"))
    except ValueError:
        cursor = 0.0
    template = templates.get_template("alert_card.html")

    token = request.cookies.get(COOKIE)

    async def events():
        nonlocal cursor
        yield "retry: 1000\n\n"
        last_ping = last_check = time.monotonic()
        last_derived, shown = 0.0, set()          # gaps / offline devices already sent
        acted_after = time.time() - 5.0               # actions the page may not show yet
        while (time.time() < sess.expires and not ctx.stopping.is_set()
               and not await request.is_disconnected()):
            if time.monotonic() - last_check > 10:          # logged out elsewhere: stop
                last_check = time.monotonic()
                if await run_in_threadpool(ctx.auth.session, token) is None:
                    return
            rows = await run_in_threadpool(queries.alert_rows, ctx.store, 50, cursor)
            acted, acted_after = await run_in_threadpool(queries.acted_since, ctx.store,
                                                         acted_after)
            rows += acted                     # resolved elsewhere: the card is replaced
            if time.monotonic() - last_derived > DERIVED_EVERY_S:
                last_derived = time.monotonic()
                derived = await run_in_threadpool(queries.derived_alerts, ctx.store)
                rows += [a for a in derived if a.key not in shown]
                shown.update(a.key for a in derived)
            for alert in reversed(rows):
                if alert.type not in ("gap", "offline") and alert not in acted:
                    cursor = max(cursor, alert.received)
                html = template.render(a=alert, sess=sess).replace("\n", " ")
                yield f"event: alert\nid: {cursor}\ndata: {html}\n\n"
            if time.monotonic() - last_ping > 15:
                last_ping = time.monotonic()
                yield ": ping\n\n"
            await asyncio.sleep(ctx.poll_s)
    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-store"})


def _event_of(ctx, dev: str, seq: int):
    rows = ctx.store.query("SELECT kind, store, type, body FROM events WHERE dev=? AND seq=?",
                           (dev, seq))
    if not rows:
        raise FormError("alert: no such alert")
    kind, store, etype, body = rows[0]
    return kind, store, etype, json.loads(body or "{}")


def _resolve(ctx, sess: Session, key: str, outcome: str, note: str) -> None:
    dev, seq = key.rsplit(":", 1)
    _kind, _store, etype, _body = _event_of(ctx, dev, int(seq))
    if not etype.startswith(("checkout.", "door.")):
        raise FormError("alert: only checkout and door alerts are resolved here")
    if ctx.store.query("SELECT 1 FROM web_alert_actions WHERE dev=? AND seq=?", (dev, int(seq))):
        raise FormError("alert: already resolved")
    ctx.store.write([("INSERT INTO web_alert_actions (dev, seq, outcome, note, by_name, ts) "
                      "VALUES (?,?,?,?,?,?)", (dev, int(seq), outcome, note, sess.name,
                                               time.time())),
                     ctx.store.audit_stmt(sess.name, "alert.resolve", key,
                                          f"{outcome}: {note}" if note else outcome)])


@page("resolve", post=True)
async def alerts_resolve(request: Request, sess: Session, form) -> Response:
    key = forms.text(form, "alert", 64, pattern=KEY_RE, hint="not an alert id")
    outcome = forms.choice(form, "outcome", list(queries.CHECKOUT_OUTCOMES) + ["handled"])
    note = forms.text(form, "note", 200, required=False)
    await run_in_threadpool(_resolve, ctx_of(request), sess, key, outcome, note)
    return RedirectResponse("/alerts?done=resolved", 303)


def _ack(ctx, sess: Session, key: str, action: str, initials: str) -> None:
    dev, seq = key.rsplit(":", 1)
    kind, store, etype, body = _event_of(ctx, dev, int(seq))
    if etype != "freezer.alarm":
        raise FormError("alert: not a freezer alarm")
    note = f"{action} (entered by {sess.name})"
    cmd_id = ctx.commands.send(DeviceRef(store, kind, dev), "ack",
                               {"alarm": body["alarm_id"], "note": note}, initials, sess.role)
    ctx.store.write([("INSERT INTO web_alert_actions (dev, seq, outcome, note, by_name, ts, "
                      "cmd_id) VALUES (?,?,?,?,?,?,?) ON CONFLICT (dev, seq) DO UPDATE SET "
                      "note=excluded.note, by_name=excluded.by_name, ts=excluded.ts, "
                      "cmd_id=excluded.cmd_id",
                      (dev, int(seq), "ack_sent", f"{action} ({initials})", sess.name,
                       time.time(), cmd_id)),
                     ctx.store.audit_stmt(sess.name, "freezer.ack", key,
                                          f"{initials}: {action} (command {cmd_id})")])


@page("ack", post=True)
async def alerts_ack(request: Request, sess: Session, form) -> Response:
    key = forms.text(form, "alert", 64, pattern=KEY_RE, hint="not an alert id")
    action = forms.text(form, "action", 200)
    initials = forms.text(form, "initials", 8, pattern=INITIALS_RE,
                          hint="1-8 letters or dots, e.g. J.D.")
    await run_in_threadpool(_ack, ctx_of(request), sess, key, action, initials)
    return RedirectResponse("/alerts?done=ack_sent", 303)


def _keyframe(ctx, dev: str, seq: int) -> bytes:
    _kind, _store, etype, body = _event_of(ctx, dev, seq)
    b64 = (body.get("evidence") or {}).get("keyframe_jpeg") if etype.startswith("checkout.") \
        else None
    try:
        jpeg = base64.b64decode(b64 or "", validate=True)
    except (ValueError, TypeError):
        jpeg = b""
    if not jpeg.startswith(b"\xff\xd8"):
        raise FormError("keyframe: this alert has no keyframe")
    return jpeg


@page("alerts")
async def keyframe(request: Request, sess: Session) -> Response:
    """The alert's keyframe as a JPEG (kept out of the page's HTML; cached by the browser)."""
    dev, seq = request.path_params["dev"], request.path_params["seq"]
    if not KEY_RE.fullmatch(f"{dev}:{seq}"):
        raise FormError("keyframe: not an alert id")
    jpeg = await run_in_threadpool(_keyframe, ctx_of(request), dev, int(seq))
    return Response(jpeg, media_type="image/jpeg",
                    headers={"cache-control": "private, max-age=86400"})


# ---------------------------------------------------------------------- devices, audit, users
@page("devices")
async def devices_page(request: Request, sess: Session) -> Response:
    ctx = ctx_of(request)
    devs = await run_in_threadpool(queries.devices, ctx.store)
    rej = await run_in_threadpool(queries.rejects, ctx.store)
    return render(request, "devices.html", {"sess": sess, "title": "Devices", "devices": devs,
                                            "rejects": rej})


@page("audit")
async def audit_page(request: Request, sess: Session) -> Response:
    rows = await run_in_threadpool(ctx_of(request).store.audit_log, 300)
    return render(request, "audit.html", {"sess": sess, "title": "Audit", "rows": rows})


@page("users")
async def users_page(request: Request, sess: Session) -> Response:
    users = await run_in_threadpool(ctx_of(request).store.users)
    return render(request, "users.html", {"sess": sess, "title": "People", "users": users,
                                          "roles": ROLES,
                                          "flash": request.query_params.get("done", "")})


@page("users", post=True)
async def users_add(request: Request, sess: Session, form) -> Response:
    name = forms.text(form, "name", 32)
    role = forms.choice(form, "role", ROLES)
    password = str(form.get("password", ""))
    await run_in_threadpool(ctx_of(request).auth.add_user, name, role, password, sess.name)
    return RedirectResponse("/users?done=added", 303)


@page("users", post=True)
async def users_password(request: Request, sess: Session, form) -> Response:
    name = forms.text(form, "name", 32)
    password = str(form.get("password", ""))
    await run_in_threadpool(ctx_of(request).auth.set_password, name, password, sess.name)
    return RedirectResponse("/users?done=password", 303)


@page("users", post=True)
async def users_remove(request: Request, sess: Session, form) -> Response:
    name = forms.text(form, "name", 32)
    await run_in_threadpool(ctx_of(request).auth.remove_user, name, sess.name)
    return RedirectResponse("/users?done=removed", 303)


async def root(request: Request) -> Response:
    return RedirectResponse("/alerts", 303)


def routes() -> list[Route]:
    return [Route("/", root),
            Route("/alerts", alerts_page), Route("/alerts/stream", alerts_stream),
            Route("/alerts/resolve", alerts_resolve, methods=["POST"]),
            Route("/alerts/ack", alerts_ack, methods=["POST"]),
            Route("/alerts/keyframe/{dev}/{seq}.jpg", keyframe),
            Route("/devices", devices_page), Route("/audit", audit_page),
            Route("/users", users_page, methods=["GET"]),
            Route("/users", users_add, methods=["POST"]),
            Route("/users/password", users_password, methods=["POST"]),
            Route("/users/remove", users_remove, methods=["POST"]),
            *door.routes(), *freezers.routes(), *figures.routes()]
