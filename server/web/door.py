"""Dock door page: deliveries, issue / revoke codes (signed), QR, door log with chain status.

Codes are signed with the store's door-signing key (``web.door_key``, from
``storeedge dock_door keygen``), exactly like ``storeedge dock_door issue``.  A revocation is a complete
signed list (every code revoked from the page, serial from ``web_kv``) sent to every dock door
with its signed ``revocations`` command; it is stored only once every door got it.
"""
from __future__ import annotations

import io
import json
import re
import time

from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from storeedge.audit import verify_chain
from storeedge.credential import CredentialSpec, issue, parse
from storeedge.doorkeys import (RevocationList, load_signing_key,
                                               sign_revocations)
from storeedge.qrimage import qr_gray
from storeedge.server.web import forms
from storeedge.server.web.commands import DeviceRef
from storeedge.server.web.app import page, render
from storeedge.server.web.exc import FormError, WebError
from storeedge.server.web.store import Session

CRED_RE = re.compile(r"[0-9a-f]{24}")
PO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,31}")
LOG_LIMIT = 500


def _doors(ctx) -> list[tuple[str, str]]:
    """``(dev, store)`` of every dock door known to the store database."""
    return ctx.store.query("SELECT dev, store FROM devices WHERE kind='dock_door' ORDER BY dev")


def _door_data(ctx, now: float) -> dict:
    day0 = int(now // 86400 * 86400)
    codes = ctx.store.query(
        "SELECT cred_id, door, vendor, driver, po, not_before, not_after, issued_by, revoked "
        "FROM web_codes WHERE not_after >= ? AND not_before < ? ORDER BY not_before",
        (day0, day0 + 2 * 86400))
    logs = {dev: _door_log(ctx, dev) for dev, _ in _doors(ctx)}
    checkins = [json.loads(b) for b, in ctx.store.query(
        "SELECT body FROM events WHERE type='door.checkin' AND placeholder=0 "
        "ORDER BY ts DESC LIMIT 50")]
    return {"codes": codes, "logs": logs, "checkins": checkins, "doors": _doors(ctx),
            "day0": day0, "can_issue": ctx.door_key is not None}


def _door_log(ctx, dev: str) -> dict:
    """The door's last LOG_LIMIT chained events and the chain's status over them."""
    rows = ctx.store.query("SELECT seq, type, ts, body FROM events WHERE dev=? AND placeholder=0 "
                           "ORDER BY seq DESC LIMIT ?", (dev, LOG_LIMIT))
    events = [{"dev": dev, "seq": s, "type": t, "ts": ts, "body": json.loads(b)}
              for s, t, ts, b in rows]
    report = verify_chain(events, expected_first=None)
    summary = report.summary() if report.checked else "no chained door events yet"
    return {"events": events[:40], "chain": summary, "ok": report.ok}


@page("door")
async def door_page(request: Request, sess: Session) -> Response:
    ctx = request.app.state.ctx
    data = await run_in_threadpool(_door_data, ctx, time.time())
    shown = request.query_params.get("code", "")
    return render(request, "door.html", {"sess": sess, "title": "Dock door", **data,
                                         "shown": shown if CRED_RE.fullmatch(shown) else "",
                                         "flash": request.query_params.get("done", "")})


def _issue(ctx, sess: Session, form) -> str:
    if ctx.door_key is None:
        raise WebError("codes cannot be issued: web.door_key is not set in the config")
    doors = dict(_doors(ctx))
    door = forms.choice(form, "door", list(doors))
    spec = CredentialSpec(store=doors[door], door=door,
                          vendor=forms.text(form, "vendor", 64),
                          driver=forms.text(form, "driver", 64),
                          po=forms.text(form, "po", 32, pattern=PO_RE,
                                        hint="letters, digits, space . _ / -"),
                          not_before=forms.when(form, "valid_from"),
                          not_after=forms.when(form, "valid_until"), uses=1)
    if not spec.not_before < spec.not_after <= spec.not_before + 7 * 86400:
        raise FormError("valid_until: must be after valid_from, at most 7 days later")
    try:
        text = issue(load_signing_key(ctx.door_key), spec)
    except ValueError as exc:
        raise FormError(str(exc)) from exc
    cred = parse(text).cred_hex
    ctx.store.write([("INSERT INTO web_codes (cred_id, door, vendor, driver, po, not_before, "
                      "not_after, text, issued_by, issued) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      (cred, door, spec.vendor, spec.driver, spec.po, spec.not_before,
                       spec.not_after, text, sess.name, time.time())),
                     ctx.store.audit_stmt(sess.name, "door.issue", cred,
                                          f"{spec.vendor} {spec.po} {door}")])
    return cred


@page("issue", post=True)
async def door_issue(request: Request, sess: Session, form) -> Response:
    cred = await run_in_threadpool(_issue, request.app.state.ctx, sess, form)
    return RedirectResponse(f"/door?code={cred}&done=issued", 303)


def _revoke(ctx, sess: Session, cred: str) -> None:
    rows = ctx.store.query("SELECT revoked FROM web_codes WHERE cred_id=?", (cred,))
    if not rows:
        raise FormError("cred: no such code")
    if rows[0][0] is not None:
        raise FormError("cred: already revoked")
    if ctx.door_key is None:
        raise WebError("codes cannot be revoked: web.door_key is not set in the config")
    revoked = {c for c, in ctx.store.query("SELECT cred_id FROM web_codes WHERE revoked IS "
                                           "NOT NULL")} | {cred}
    serial_row = ctx.store.query("SELECT v FROM web_kv WHERE k='revocation_serial'")
    serial = int(serial_row[0][0]) + 1 if serial_row else 1   # doors refuse big jumps
    for door, store in _doors(ctx):
        rl = RevocationList(store, serial, int(time.time()),
                            frozenset(bytes.fromhex(c) for c in revoked))
        doc = sign_revocations(load_signing_key(ctx.door_key), rl).decode()
        ctx.commands.send(DeviceRef(store, "dock_door", door), "revocations", {"list": doc},
                          sess.name, sess.role)
    ctx.store.write([("UPDATE web_codes SET revoked=?, revoked_by=? WHERE cred_id=?",
                      (time.time(), sess.name, cred)),
                     ("DELETE FROM web_kv WHERE k='revocation_serial'", ()),
                     ("INSERT INTO web_kv (k, v) VALUES ('revocation_serial', ?)", (str(serial),)),
                     ctx.store.audit_stmt(sess.name, "door.revoke", cred, f"list serial {serial}")])


@page("issue", post=True)
async def door_revoke(request: Request, sess: Session, form) -> Response:
    cred = forms.text(form, "cred", 24, pattern=CRED_RE, hint="24 hex characters")
    await run_in_threadpool(_revoke, request.app.state.ctx, sess, cred)
    return RedirectResponse("/door?done=revoked", 303)


def _qr_png(ctx, cred: str) -> bytes:
    rows = ctx.store.query("SELECT text FROM web_codes WHERE cred_id=?", (cred,))
    if not rows:
        raise FormError("cred: no such code")
    buf = io.BytesIO()
    Image.fromarray(qr_gray(rows[0][0], scale=6), mode="L").save(buf, format="PNG")
    return buf.getvalue()


@page("issue")
async def door_qr(request: Request, sess: Session) -> Response:
    cred = request.path_params["cred"]
    if not CRED_RE.fullmatch(cred):
        raise FormError("cred: 24 hex characters")
    png = await run_in_threadpool(_qr_png, request.app.state.ctx, cred)
    return Response(png, media_type="image/png", headers={"cache-control": "no-store"})


def routes() -> list[Route]:
    return [Route("/door", door_page), Route("/door/issue", door_issue, methods=["POST"]),
            Route("/door/revoke", door_revoke, methods=["POST"]),
            Route("/door/qr/{cred}.png", door_qr)]
