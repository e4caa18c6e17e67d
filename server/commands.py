"""The store server's command sender: sign, count durably, publish (QoS 1, never retained).

Used by ``storeedge store-server command`` and by the store page::

    from storeedge.server.commands import CommandSender
    sender = CommandSender(link, load_signing_key(cfg.security.command_key), db)
    cmd_id = sender.send("s0001", "freezer", "fz-1", "ack",
                         {"alarm": "a-17", "note": "door shut, product moved (JD)"},
                         by="alice", role="associate")

Each device keeps the highest counter it has acted on and refuses anything not above it, so
the sender's per-device counter lives in the store database (table ``command_counters``,
SQLite or PostgreSQL) and every command sent is logged in ``commands_sent`` (who, what,
when).  A counter is ``max(last + 1, now in ms)``: a lost or restored database still issues
counters above every one sent before (as long as the server's clock does not go back).
The device's result arrives as a ``device.command`` event through the normal event path.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from typing import Callable, NamedTuple

from storeedge import topics
from storeedge.signing import (COMMAND_ROLES, DEFAULT_TTL_S, MAX_TTL_S, CommandSigner, Role,
                               SignedCommand, Target)

COMMAND_TABLES = [
    """CREATE TABLE IF NOT EXISTS command_counters (
        dev TEXT PRIMARY KEY, ctr BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS commands_sent (
        id TEXT PRIMARY KEY, store TEXT NOT NULL, kind TEXT NOT NULL, dev TEXT NOT NULL,
        name TEXT NOT NULL, args TEXT NOT NULL, ctr BIGINT NOT NULL, by_name TEXT NOT NULL,
        role TEXT NOT NULL, sent DOUBLE PRECISION NOT NULL, exp BIGINT NOT NULL)""",
]


class SentCommand(NamedTuple):
    """One row of ``commands_sent`` (``sent`` epoch seconds, ``exp`` not-after epoch s)."""

    id: str
    dev: str
    name: str
    ctr: int
    by: str
    role: str
    sent: float
    exp: int


def ensure_command_tables(db) -> None:
    """Create the sender's tables in a :class:`~storeedge.server.db.StoreDB` (idempotent)."""
    with db.lock:
        txn = db.transactions()
        txn.begin()
        try:
            cur = db.conn.cursor()
            for stmt in COMMAND_TABLES:
                cur.execute(stmt)
            txn.commit()
        except Exception:
            txn.rollback()
            raise


class CommandSender:
    """Signs and publishes commands to devices on the store broker.

    Args:
        link: a connected :class:`~storeedge.link.MqttLink` to the store broker.
        signer: the store's :class:`~storeedge.signing.CommandSigner`.
        db: the store database (:class:`~storeedge.server.db.StoreDB`); the counters live there.
        ttl_s: validity of each command, seconds (its not-after is now + ttl_s).
        clock: wall clock, epoch seconds.
    """

    def __init__(self, link, signer: CommandSigner, db, *, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.time):
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl_s {ttl_s} must be within 1..{MAX_TTL_S} s")
        self.link, self.signer, self.db = link, signer, db
        self.ttl_s, self.clock = ttl_s, clock
        self._lock = threading.Lock()
        self.last_info = None      # paho MQTTMessageInfo of the last publish (wait_for_publish)
        ensure_command_tables(db)

    def send(self, store: str, kind: str, dev: str, name: str, args: dict, by: str,
             role: Role | str) -> str:
        """Sign and publish command ``name`` for ``store/kind/dev``; returns the command id.

        ``by`` is the person (name or initials) who ordered it and ``role`` their
        :class:`~storeedge.signing.Role`; the device records ``by`` as the actor.
        Raises:
            ValueError: unknown command, a role that may not send it, or a bad field.
        """
        role = Role(role)
        if role not in COMMAND_ROLES.get(name, frozenset()):
            raise ValueError(f"{role.value} may not send {name!r}" if name in COMMAND_ROLES
                             else f"unknown command {name!r}")
        now = self.clock()
        exp = int(now + self.ttl_s)
        cmd_id = str(uuid.uuid4())
        target = Target(store, kind, dev)
        with self._lock:       # counter order == publish order for one sender
            ctr = self._next_counter(dev, now)
            payload = self.signer.sign(SignedCommand(cmd_id, target, name, dict(args), ctr,
                                                     exp, by, role))
            self._log(SentCommand(cmd_id, dev, name, ctr, by, role.value, now, exp),
                      target, args)
            self.last_info = self.link.publish(topics.command(store, kind, dev, name), payload,
                                               qos=1, retain=False)
        return cmd_id

    def _next_counter(self, dev: str, now: float) -> int:
        floor = int(now * 1000)
        return self._write(lambda cur, sql: _bump(cur, sql, dev, floor))

    def _log(self, row: SentCommand, target: Target, args: dict) -> None:
        def insert(cur, sql):
            cur.execute(sql("INSERT INTO commands_sent (id, store, kind, dev, name, args, ctr, "
                            "by_name, role, sent, exp) VALUES (?,?,?,?,?,?,?,?,?,?,?)"),
                        (row.id, target.store, target.kind, row.dev, row.name,
                         json.dumps(args, sort_keys=True), row.ctr, row.by, row.role, row.sent,
                         row.exp))
        self._write(insert)

    def _write(self, fn):
        db = self.db
        with db.lock:
            txn = db.transactions()
            txn.begin()
            try:
                out = fn(db.conn.cursor(), db.sql)
                txn.commit()
                return out
            except Exception:
                txn.rollback()
                raise

    def sent(self, dev: str, limit: int = 50) -> list[SentCommand]:
        """The last ``limit`` commands sent to ``dev``, newest first."""
        rows = self.db.query("SELECT id, dev, name, ctr, by_name, role, sent, exp FROM "
                             "commands_sent WHERE dev=? ORDER BY ctr DESC LIMIT ?", (dev, limit))
        return [SentCommand(*r) for r in rows]


def _bump(cur, sql, dev: str, floor: int) -> int:
    """Raise ``dev``'s counter to ``max(ctr + 1, floor)`` and return it (in a transaction)."""
    cur.execute(sql("SELECT ctr FROM command_counters WHERE dev=?"), (dev,))
    row = cur.fetchone()
    ctr = max((row[0] + 1) if row else 1, floor)
    if row:
        cur.execute(sql("UPDATE command_counters SET ctr=? WHERE dev=?"), (ctr, dev))
    else:
        cur.execute(sql("INSERT INTO command_counters (dev, ctr) VALUES (?, ?)"), (dev, ctr))
    return ctr


# ----------------------------------------------------------------------------- CLI


def cli_main(argv: list[str]) -> int:
    """``storeedge store-server command DEV NAME --args JSON --by NAME --role ROLE --config``."""
    args = _parser().parse_args(argv)
    try:
        cmd_args = json.loads(args.args)
        if not isinstance(cmd_args, dict):
            raise ValueError("must be a JSON object")
    except ValueError as exc:
        print(f"--args: not a JSON object: {exc}", file=sys.stderr)
        return 2
    try:
        return _run_cli(args, cmd_args)
    except Exception as exc:       # one clear line for every expected failure
        print(f"storeedge store-server command: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="storeedge store-server command",
                                description="sign and send one command to a device")
    p.add_argument("dev")
    p.add_argument("name", choices=sorted(COMMAND_ROLES))
    p.add_argument("--args", default="{}", help="command arguments, a JSON object")
    p.add_argument("--by", required=True, help="who orders it (name or initials)")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--config", required=True, help="the store server's config (st.yaml)")
    p.add_argument("--kind", default=None, help="device kind (default: from the database)")
    p.add_argument("--store", default=None, help="store id (default: from the database)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker")
    return p


def _run_cli(args, cmd_args: dict) -> int:
    from storeedge.config import load_config
    from storeedge.link import MqttLink
    from storeedge.server.config import StoreServerConfig
    from storeedge.server.db import open_store_db
    from storeedge.signing import load_signing_key

    cfg = load_config(args.config, StoreServerConfig)
    if not cfg.security.command_key:
        raise ValueError("security.command_key is not set in the config")
    signer = load_signing_key(cfg.security.command_key)
    db = open_store_db(cfg.server.db)
    try:
        kind, store = _target_of(db, args)
        link = MqttLink(f"se-cmd-{cfg.server.id}-{uuid.uuid4().hex[:8]}", cfg.link)
        link.start()
        try:
            if not link.wait_connected(args.timeout):
                raise ConnectionError(f"no connection to {cfg.link.url} in {args.timeout} s")
            sender = CommandSender(link, signer, db)
            cmd_id = sender.send(store, kind, args.dev, args.name, cmd_args, args.by, args.role)
            sender.last_info.wait_for_publish(args.timeout)
            if not sender.last_info.is_published():
                raise ConnectionError("the broker did not acknowledge the command")
        finally:
            link.stop()
    finally:
        db.close()
    print(cmd_id)
    return 0


def _target_of(db, args) -> tuple[str, str]:
    if args.kind and args.store:
        return args.kind, args.store
    rows = db.query("SELECT kind, store FROM devices WHERE dev=?", (args.dev,))
    if not rows:
        raise ValueError(f"device {args.dev!r} is not in the store database; give --kind and "
                         f"--store")
    return args.kind or rows[0][0], args.store or rows[0][1]
