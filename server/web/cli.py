"""``storeedge store-server user add NAME --role ROLE`` and starting the page with the server."""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from storeedge.server.web.exc import FormError

log = logging.getLogger("storeedge.store_page")


def user_main(argv: list[str]) -> int:
    """Create an account; the password comes from ``STOREEDGE_PASSWORD`` or a prompt."""
    parser = argparse.ArgumentParser(prog="storeedge store-server user",
                                     description="manage store-page accounts")
    sub = parser.add_subparsers(dest="what", required=True)
    add = sub.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["associate", "manager", "technician"])
    src = add.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="the store server's config (uses server.db)")
    src.add_argument("--db", help="sqlite:///FILE or postgresql://...")
    args = parser.parse_args(argv)
    password = os.environ.get("STOREEDGE_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            print("no password: set STOREEDGE_PASSWORD or run in a terminal", file=sys.stderr)
            return 2
        password = getpass.getpass(f"password for {args.name}: ")
    return _add(args, password)


def _add(args, password: str) -> int:
    from storeedge.server.db import open_store_db
    from storeedge.server.exc import StoreServerError
    from storeedge.server.web.auth import Auth
    from storeedge.server.web.store import WebStore

    try:
        url = args.db or _db_of(args.config)
        db = open_store_db(url)
    except (StoreServerError, OSError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        Auth(WebStore(db)).add_user(args.name, args.role, password, by="cli")
    except FormError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"added {args.role} {args.name}")
    return 0


def _db_of(config: str) -> str:
    from storeedge.config import load_config
    from storeedge.server.config import StoreServerConfig

    return load_config(config, StoreServerConfig).server.db


def start_web(cfg, link):
    """Start the page for ``cfg`` if ``web.enabled`` (None otherwise, or if it cannot start:
    the consumer keeps running and the reason is logged)."""
    if not cfg.web.enabled:
        return None
    from storeedge.server.web.serve import WebServer, build_context

    try:
        ctx = build_context(cfg, link)
        server = WebServer(ctx, cfg.web.host, cfg.web.port, cfg.web.tls_cert, cfg.web.tls_key)
        server.start()
    except Exception as exc:        # the event path matters more than the page
        log.error("store page not started: %s", exc)
        return None
    if not cfg.web.tls_cert:
        log.warning("store page served over plain HTTP at %s (set web.tls_cert/tls_key)",
                    server.url)
    log.info("store page at %s", server.url)
    if ctx.store.user_count() == 0:
        from storeedge.server.main import _safe_url
        print(f"store page: no accounts yet. Create the first manager with\n"
              f"  storeedge store-server user add NAME --role manager "
              f"--db {_safe_url(cfg.server.db)}", flush=True)
    return server


def demo_web(workdir, db_url: str, door_key: str | None = None) -> tuple[dict, str]:
    """The ``web`` section for the demo's store server and the lines to print: a free port,
    a demo manager with a fresh random password (in the demo's database)."""
    import secrets

    from storeedge.brokerproc import free_port
    from storeedge.server.db import open_store_db
    from storeedge.server.web.auth import Auth
    from storeedge.server.web.store import WebStore

    port, password = free_port(), secrets.token_urlsafe(9)
    db = open_store_db(db_url)
    try:
        auth = Auth(WebStore(db))
        for name, role in (("demo", "manager"), ("demo-associate", "associate")):
            if auth.store.user(name) is None:
                auth.add_user(name, role, password, by="demo")
    finally:
        db.close()
    section = {"enabled": True, "host": "127.0.0.1", "port": port, "door_key": door_key}
    text = (f"demo: store page http://127.0.0.1:{port}/  login demo / {password} (manager), "
            f"demo-associate / {password} (associate)")
    return section, text
