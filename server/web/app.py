"""The store page's ASGI app (Starlette): middleware, login/logout, page plumbing.

``create_app(ctx)`` builds the app; :mod:`.pages` adds the pages.  Every page checks the
session (HttpOnly SameSite=Strict cookie), the role (read from the database) and, for every
POST, the CSRF token; request bodies above ``max_body_bytes`` are refused with 413 before
they are read.  Expected failures render one clear line, never a traceback.
"""
from __future__ import annotations

import datetime as _dt
import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from storeedge.server.web.auth import Auth, allowed, check_csrf
from storeedge.server.web.commands import PageCommands
from storeedge.server.web.exc import AuthError, FormError, LockedOut, WebError
from storeedge.server.web.store import Session, WebStore

log = logging.getLogger(__name__)
HERE = os.path.dirname(os.path.abspath(__file__))
COOKIE = "se_session"
NOT_PAGES = ("stream", ".csv", ".pdf", ".png", ".jpg", ".svg")   # 401, not a login redirect
NAV = [("alerts", "/alerts", "Alerts"), ("freezers", "/freezers", "Freezers"),
       ("door", "/door", "Dock door"), ("devices", "/devices", "Devices"),
       ("figures", "/figures", "Figures"), ("users", "/users", "People"),
       ("audit", "/audit", "Audit")]


@dataclass
class WebContext:
    """Everything the pages need (one per app)."""

    store: WebStore
    auth: Auth
    commands: PageCommands
    store_id: str = "store"
    secure_cookie: bool = False
    max_body_bytes: int = 64 * 1024
    door_key: str | None = None
    poll_s: float = 0.25
    stopping: threading.Event = field(default_factory=threading.Event)


templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")), autoescape=True))


def _utc(epoch) -> str:
    """Jinja filter: epoch seconds as ``YYYY-MM-DD HH:MM`` UTC."""
    try:
        return _dt.datetime.fromtimestamp(float(epoch), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError):
        return ""


templates.env.filters["utc"] = _utc


def render(request: Request, name: str, ctx: dict, status: int = 200) -> Response:
    sess = ctx.get("sess")
    nav = [n for n in NAV if sess is not None and allowed(sess, n[0])]
    return templates.TemplateResponse(request, name, {"nav": nav, **ctx}, status_code=status)


def message(request: Request, text: str, status: int, sess: Session | None = None) -> Response:
    """One clear line as a page (HTML) in the house style."""
    return render(request, "message.html", {"sess": sess, "text": text, "title": "Refused"},
                  status)


Handler = Callable[[Request, Session], Awaitable[Response]]


def page(what: str, post: bool = False):
    """Decorator: require a live session allowed ``what`` (and a CSRF token for POST)."""
    def wrap(fn: Handler):
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            ctx: WebContext = request.app.state.ctx
            token = request.cookies.get(COOKIE)
            sess = await run_in_threadpool(ctx.auth.session, token)
            if sess is None:
                why = "expired" if token else "login"
                if post or request.url.path.endswith(NOT_PAGES):
                    return message(request, "your session expired; log in again"
                                   if token else "log in first", 401)
                return RedirectResponse(f"/login?why={why}", 303)
            if not allowed(sess, what):
                await run_in_threadpool(ctx.store.audit, sess.name, "denied", what,
                                        request.url.path)
                article = "an" if sess.role[0] in "aeiou" else "a"
                return message(request, f"{article} {sess.role} may not open this page", 403,
                               sess)
            try:
                if post:
                    form = await request.form(max_files=0, max_fields=30)
                    check_csrf(sess, form.get("csrf"))
                    return await fn(request, sess, form)
                return await fn(request, sess)
            except AuthError as exc:
                return message(request, str(exc), 403, sess)
            except (FormError, WebError) as exc:
                return message(request, str(exc), 400, sess)
        return endpoint
    return wrap


async def login_page(request: Request) -> Response:
    why = request.query_params.get("why")
    note = {"expired": "Your session expired; log in again.",
            "logout": "You are logged out."}.get(why, "")
    ctx: WebContext = request.app.state.ctx
    first = await run_in_threadpool(ctx.store.user_count) == 0
    return render(request, "login.html", {"sess": None, "note": note, "first": first,
                                          "title": "Log in"})


async def login_post(request: Request) -> Response:
    ctx: WebContext = request.app.state.ctx
    form = await request.form(max_files=0, max_fields=5)
    name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:256]
    try:
        result = await run_in_threadpool(ctx.auth.login, name, password)
    except LockedOut as exc:
        return render(request, "login.html", {"sess": None, "error": str(exc),
                                              "title": "Log in"}, 429)
    except AuthError as exc:
        return render(request, "login.html", {"sess": None, "error": str(exc),
                                              "title": "Log in"}, 401)
    resp = RedirectResponse("/alerts", 303)
    resp.set_cookie(COOKIE, result.token, max_age=int(ctx.auth.ttl), httponly=True,
                    samesite="strict", secure=ctx.secure_cookie, path="/")
    return resp


@page("alerts", post=True)
async def logout(request: Request, sess: Session, form) -> Response:
    await run_in_threadpool(request.app.state.ctx.auth.logout, sess)
    resp = RedirectResponse("/login?why=logout", 303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


class _Limits:
    """ASGI middleware: body size cap (413) and security headers on every response."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
               (b"referrer-policy", b"no-referrer"),
               (b"content-security-policy",
                b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                b"script-src 'self'; frame-ancestors 'none'; form-action 'self'")]

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await _too_large(self.max_body, send)
        seen = 0

        async def capped_receive():
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_body:
                raise _TooLarge()
            return msg

        async def headed_send(msg):
            if msg["type"] == "http.response.start":
                msg["headers"] = list(msg.get("headers", [])) + self.HEADERS
            await send(msg)
        try:
            await self.app(scope, capped_receive, headed_send)
        except _TooLarge:
            await _too_large(self.max_body, send)


class _TooLarge(Exception):
    pass


async def _too_large(limit: int, send) -> None:
    body = f"refused: the request is larger than {limit} bytes\n".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def _not_found(request: Request, _exc) -> Response:
    return PlainTextResponse("not found", 404)


def create_app(ctx: WebContext):
    """The ASGI app for ``ctx`` (wrapped in the size/headers middleware)."""
    from storeedge.server.web import pages

    routes = [Route("/login", login_page, methods=["GET"]),
              Route("/login", login_post, methods=["POST"]),
              Route("/logout", logout, methods=["POST"]),
              *pages.routes(),
              Mount("/static", StaticFiles(directory=os.path.join(HERE, "static")),
                    name="static")]
    app = Starlette(routes=routes, exception_handlers={404: _not_found})
    app.state.ctx = ctx
    return _Limits(app, ctx.max_body_bytes)
