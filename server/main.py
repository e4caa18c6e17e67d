"""``storeedge store-server``: the store-side consumer (and ``counts`` to inspect its DB)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from storeedge.cmdline import (AppExit, app_parser, load_app_config,
                                           run_subcommand, stop_event_on_signals)
from storeedge.server.config import StoreServerConfig

log = logging.getLogger("storeedge.store_server")


def _user(argv: list[str]) -> int:
    from storeedge.server.web.cli import user_main
    return user_main(argv)


def _command(argv: list[str]) -> int:
    from storeedge.server.commands import cli_main
    return cli_main(argv)


def main(argv: list[str]) -> int:
    """``storeedge store-server``: the consumer, or one of its subcommands."""
    done = run_subcommand(argv, {"counts": _counts, "verify-chain": _verify_chain,
                                 "events": _events, "user": _user, "command": _command},
                          options_with_value=("--config", "--log-level", "--db"))
    if done is not None:
        return done
    parser = app_parser("store-server", "store events from every device exactly once")
    parser.add_argument("--db", default=None, help="override server.db (sqlite:///FILE or "
                                                    "postgresql://...)")
    args = parser.parse_args(argv)
    try:
        cfg = load_app_config(args, StoreServerConfig)
    except AppExit as end:
        return end.exit_code
    if args.db:
        cfg.server.db = args.db
    from storeedge.server.consumer import StoreServer

    from storeedge.exc import SealKeyError
    from storeedge.server.exc import StoreServerError

    try:
        server = StoreServer(cfg)
    except (StoreServerError, SealKeyError) as exc:
        print(f"store-server: {exc}", file=sys.stderr)
        return 1
    server.start()
    from storeedge.server.web.cli import start_web
    web = start_web(cfg, server.link)
    stop = stop_event_on_signals()
    log.info("store server %s consuming from %s into %s", cfg.server.id, cfg.link.url,
             _safe_url(cfg.server.db))
    stop.wait()
    if web is not None:
        web.close()
    server.close()
    return 0


def _safe_url(url: str) -> str:
    """The database URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def _open_db(url: str):
    """The store database for a CLI tool, or None after saying on stderr why not.

    An SQLite file that does not exist is refused (opening it would create an empty store
    and report nothing, which looks like a store that received nothing)."""
    from storeedge.server.db import open_store_db
    from storeedge.server.exc import StoreDatabaseError

    if not url.startswith(("postgresql:", "postgres:")):
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
        if not os.path.isfile(path):
            print(f"store-server: no store database at {os.path.abspath(path)} ({url}): check "
                  "--db (an absolute path needs four slashes: sqlite:////var/lib/storeedge/"
                  "store.db) or the store server's server.db", file=sys.stderr)
            return None
    try:
        return open_store_db(url)
    except StoreDatabaseError as exc:
        print(exc, file=sys.stderr)
        return None


def _counts(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="storeedge store-server counts",
                                     description="per-device stored events, watermark, gaps")
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    db = _open_db(args.db)
    if db is None:
        return 1
    try:
        _print_counts(db)
    finally:
        db.close()
    return 0


def _print_counts(db) -> None:
    print(f"{'device':<16} {'kind':<10} {'stored':>8} {'coalesced':>9} {'watermark':>9} "
          f"{'dups':>6} {'conflicts':>9}")
    for dev, kind, stored, ph, wm, dups, conflicts in db.device_counts():
        print(f"{dev:<16.16} {kind:<10.10} {stored:>8} {ph:>9} {wm:>9} {dups:>6} {conflicts:>9}")
    gaps = db.query("SELECT dev, first_seq, last_seq, reason, resolved FROM gaps ORDER BY dev")
    for dev, first, last, reason, resolved in gaps:
        state = "resolved" if resolved else "open"
        print(f"gap {dev} {first}..{last} {reason} {state}")
    for item in db.integrity(limit=50):
        print(f"integrity {item.dev} seq {item.seq} {item.reason} x{item.count}: {item.detail}")


def _events(argv: list[str]) -> int:
    """``store-server events``: stored events, newest first, with filters."""
    parser = argparse.ArgumentParser(prog="storeedge store-server events",
                                     description="list stored events (newest first)")
    parser.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    parser.add_argument("--dev", action="append", help="only this device (repeatable)")
    parser.add_argument("--kind", help="only this device kind (freezer, dock_door...)")
    parser.add_argument("--type", dest="etype", help="only this event type; a trailing * "
                                                     "matches a prefix (freezer.*)")
    parser.add_argument("--since", type=float, help="received at or after (epoch seconds)")
    parser.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    db = _open_db(args.db)
    if db is None:
        return 1
    try:
        rows = db.query(*_events_sql(args))
    finally:
        db.close()
    for dev, seq, kind, etype, ts, body in rows:
        if args.json:
            print(json.dumps({"dev": dev, "seq": seq, "kind": kind, "type": etype, "ts": ts,
                              "body": None if body is None else json.loads(body)},
                             separators=(",", ":")))
        else:
            print(f"{ts}  {dev:<16} {seq:>8}  {etype:<24} {(body or '-')[:60]}")
    if not rows and not args.json:
        print("(no stored events match)")
    return 0


def _events_sql(args) -> tuple[str, list]:
    where, params = ["placeholder = 0"], []
    if args.dev:
        where.append("dev IN (" + ", ".join("?" for _ in args.dev) + ")")
        params += args.dev
    if args.kind:
        where.append("kind = ?")
        params.append(args.kind)
    if args.etype:
        if args.etype.endswith("*"):
            prefix = args.etype[:-1]
            where.append("substr(type, 1, ?) = ?")
            params += [len(prefix), prefix]
        else:
            where.append("type = ?")
            params.append(args.etype)
    if args.since is not None:
        where.append("received >= ?")
        params.append(args.since)
    sql = (f"SELECT dev, seq, kind, type, ts, body FROM events WHERE {' AND '.join(where)} "
           f"ORDER BY received DESC, dev, seq DESC LIMIT {int(args.limit)}")
    return sql, params


def _verify_chain(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="storeedge store-server verify-chain",
        description="check a dock door's audit hash chain in the store database")
    parser.add_argument("--db", required=True)
    parser.add_argument("--dev", required=True, help="door device id")
    parser.add_argument("--expected-last", type=int, default=None,
                        help="the door's latest chain index, if known (detects a removed tail)")
    args = parser.parse_args(argv)
    from storeedge.audit import verify_chain

    db = _open_db(args.db)
    if db is None:
        return 1
    try:
        events = [{"dev": args.dev, "seq": seq, "type": etype, "body": body}
                  for seq, etype, body in db.events_of(args.dev) if body is not None]
    finally:
        db.close()
    report = verify_chain(events, expected_last=args.expected_last)
    print(f"{args.dev}: {report.summary()}")
    return 0 if report.ok else 1
