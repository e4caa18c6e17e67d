"""Running the store page next to the consumer: build the context, serve with uvicorn.

``WebServer(cfg, link)`` opens its own connection to the store database, builds the app and
runs uvicorn in a thread; ``close()`` stops it.  TLS: ``web.tls_cert``/``web.tls_key`` (then
the session cookie is also ``Secure``).
"""
from __future__ import annotations

import logging
import threading
import time

from storeedge.server.db import open_store_db
from storeedge.server.web.app import WebContext, create_app
from storeedge.server.web.auth import Auth
from storeedge.server.web.commands import PageCommands
from storeedge.server.web.store import WebStore

log = logging.getLogger(__name__)


def build_context(cfg, link=None, db=None) -> WebContext:
    """The page's context for a StoreServerConfig ``cfg`` (``link``: the store broker)."""
    web = cfg.web
    db = db or open_store_db(cfg.server.db)
    store = WebStore(db)
    auth = Auth(store, web.session_ttl_s, web.lockout_after, web.lockout_s)
    commands = PageCommands(link, db, cfg.security.command_key, cfg.security.insecure)
    return WebContext(store, auth, commands, store_id=cfg.server.id,
                      secure_cookie=bool(web.tls_cert), max_body_bytes=web.max_body_bytes,
                      door_key=web.door_key, poll_s=web.poll_s)


class WebServer:
    """uvicorn serving the page in a background thread.

    Args:
        ctx: the page's context.
        host, port: where to listen (port 0: any free port; see :attr:`port` after start).
        tls_cert, tls_key: PEM files for HTTPS, or None for plain HTTP.
    """

    def __init__(self, ctx: WebContext, host: str, port: int, tls_cert: str | None = None,
                 tls_key: str | None = None):
        import uvicorn

        self.ctx = ctx
        config = uvicorn.Config(create_app(ctx), host=host, port=port, log_level="warning",
                                ssl_certfile=tls_cert, ssl_keyfile=tls_key, lifespan="off",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.scheme = "https" if tls_cert else "http"
        self._thread = threading.Thread(target=self.server.run, name="store-page", daemon=True)
        self._rollups = threading.Thread(target=self._roll_up, name="store-page-rollup",
                                         daemon=True)

    def _roll_up(self, period_s: float = 60.0) -> None:
        """Keep every freezer's 30-minute rollup current, so a long chart never waits for it."""
        from storeedge.server.web import rollup

        while not self.ctx.stopping.is_set():
            try:
                for dev, in self.ctx.store.query("SELECT dev FROM devices WHERE kind='freezer'"):
                    rollup.refresh(self.ctx.store, dev)
            except Exception:
                log.exception("store page: readings rollup failed (charts read raw readings)")
            self.ctx.stopping.wait(period_s)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        self._rollups.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the store page did not start (port in use?)")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = self.server.config.host
        return f"{self.scheme}://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def close(self) -> None:
        self.ctx.stopping.set()             # live streams end within one poll period
        time.sleep(self.ctx.poll_s * 2)
        self.server.should_exit = True
        self._thread.join(5)
        self._rollups.join(5)
        self.ctx.store.db.close()
