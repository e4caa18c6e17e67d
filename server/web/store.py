"""The store page's tables and writes, next to the consumer's events (SQLite or PostgreSQL).

Tables (created by :func:`ensure_web_schema`, idempotent):

* ``web_users``: name, role, scrypt hash, failed-login count, lock time.
* ``web_sessions``: SHA-256 of the session token, name, CSRF token, expiry (epoch s).
* ``web_audit``: every action with the person's name (append only).
* ``web_alert_actions``: how an alert (an event ``dev, seq``) was resolved, by whom.
* ``web_codes``: door codes issued from the page (and their revocation).
* ``web_kv``: small counters (the revocation-list serial).
* ``web_rollup`` / ``web_rollup_cursor``: freezer readings per 30 minutes (see rollup.py).

Indexes on ``events`` (partial where possible, so the consumer's other inserts do not pay):
alert types by arrival, every type by device time, readings per device and time.
"""
from __future__ import annotations

import time
from typing import Iterable, NamedTuple

from storeedge.server.db import StoreDB
from storeedge.server.web.exc import WriteConflict

ALERT_TYPES = ("checkout.nudge", "checkout.escalate", "freezer.alarm", "door.forced_open",
               "door.held_open", "door.tamper", "door.jammed", "door.lockout")
_ALERT_IN = "(" + ",".join(f"'{t}'" for t in ALERT_TYPES) + ")"
ALERT_WHERE = f"type IN {_ALERT_IN} AND placeholder=0"

WEB_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS web_users (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, pw TEXT NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0, locked_until DOUBLE PRECISION NOT NULL DEFAULT 0,
        created DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_sessions (
        token TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS web_audit (
        ts DOUBLE PRECISION NOT NULL, name TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT NOT NULL, detail TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS web_audit_ts ON web_audit (ts)",
    """CREATE TABLE IF NOT EXISTS web_alert_actions (
        dev TEXT NOT NULL, seq BIGINT NOT NULL, outcome TEXT NOT NULL, note TEXT NOT NULL,
        by_name TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
        cmd_id TEXT,                                -- the signed command sent (freezer ack)
        PRIMARY KEY (dev, seq))""",
    """CREATE TABLE IF NOT EXISTS web_codes (
        cred_id TEXT PRIMARY KEY, door TEXT NOT NULL, vendor TEXT NOT NULL,
        driver TEXT NOT NULL, po TEXT NOT NULL, not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL, text TEXT NOT NULL, issued_by TEXT NOT NULL,
        issued DOUBLE PRECISION NOT NULL, revoked DOUBLE PRECISION, revoked_by TEXT)""",
    "CREATE TABLE IF NOT EXISTS web_kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS web_rollup (
        dev TEXT NOT NULL, unit TEXT NOT NULL, probe TEXT NOT NULL, b BIGINT NOT NULL,
        lo DOUBLE PRECISION, hi DOUBLE PRECISION, total DOUBLE PRECISION,
        n BIGINT NOT NULL, PRIMARY KEY (dev, unit, b, probe))""",
    "CREATE TABLE IF NOT EXISTS web_rollup_cursor (dev TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS web_ev_alerts ON events (received) WHERE {ALERT_WHERE}",
    "CREATE INDEX IF NOT EXISTS web_ev_type_ts ON events (type, ts)",
    "CREATE INDEX IF NOT EXISTS web_ev_dev_type_ts ON events (dev, type, ts)",
]


class User(NamedTuple):
    """A store-page account (``pw`` is the scrypt hash string)."""

    name: str
    role: str
    pw: str
    failed: int
    locked_until: float


class Session(NamedTuple):
    """A logged-in session: ``token`` is the SHA-256 hex of the cookie value."""

    token: str
    name: str
    role: str
    csrf: str
    expires: float


def ensure_web_schema(db: StoreDB) -> None:
    """Create the page's tables and indexes (idempotent)."""
    with db.lock:
        for stmt in WEB_SCHEMA:
            if not db.is_pg and "web_rollup (" in stmt:
                stmt += " WITHOUT ROWID"             # clustered on its key: charts read less
            db._exec(stmt)
        db._commit_now()


class WebStore:
    """Reads and writes of the store page on one :class:`StoreDB` connection.

    Every write runs in its own transaction: either all of it is stored or none.
    """

    def __init__(self, db: StoreDB):
        self.db = db
        ensure_web_schema(db)

    # ------------------------------------------------------------------ plumbing
    def write(self, stmts: Iterable[tuple[str, tuple]],
              expect_rows: dict[int, int] | None = None) -> None:
        """Run ``(sql, params)`` statements in one transaction (all or nothing).

        ``expect_rows``: statement index -> rows it must change, else WriteConflict (rolled
        back).
        """
        txn = self.db.transactions()
        with self.db.lock:
            txn.begin()
            try:
                for i, (text, params) in enumerate(stmts):
                    cur = self.db._exec(text, params)
                    if expect_rows and i in expect_rows and cur.rowcount != expect_rows[i]:
                        raise WriteConflict(f"statement {i} changed {cur.rowcount} rows")
                txn.commit()
            except Exception:
                txn.rollback()
                raise

    def query(self, text: str, params: Iterable = ()) -> list[tuple]:
        return self.db.query(text, params)

    def audit_stmt(self, name: str, action: str, target: str, detail: str = "") -> tuple:
        """The audit insert to run inside another write's transaction."""
        return ("INSERT INTO web_audit (ts, name, action, target, detail) VALUES (?,?,?,?,?)",
                (time.time(), name, action, target, detail))

    def audit(self, name: str, action: str, target: str, detail: str = "") -> None:
        self.write([self.audit_stmt(name, action, target, detail)])

    def audit_log(self, limit: int = 200) -> list[tuple]:
        """``(ts, name, action, target, detail)`` newest first."""
        return self.query("SELECT ts, name, action, target, detail FROM web_audit "
                          "ORDER BY ts DESC LIMIT ?", (limit,))

    # ------------------------------------------------------------------ users
    def user(self, name: str) -> User | None:
        rows = self.query("SELECT name, role, pw, failed, locked_until FROM web_users "
                          "WHERE name=?", (name,))
        return User(*rows[0]) if rows else None

    def users(self) -> list[User]:
        return [User(*r) for r in self.query("SELECT name, role, pw, failed, locked_until "
                                             "FROM web_users ORDER BY name")]

    def user_count(self) -> int:
        return self.query("SELECT COUNT(*) FROM web_users")[0][0]

    def add_user(self, name: str, role: str, pw_hash: str, by: str) -> None:
        self.write([("INSERT INTO web_users (name, role, pw, created) VALUES (?,?,?,?)",
                     (name, role, pw_hash, time.time())),
                    self.audit_stmt(by, "user.add", name, f"role {role}")])

    def login_failed(self, name: str, failed: int, locked_until: float) -> None:
        self.write([("UPDATE web_users SET failed=?, locked_until=? WHERE name=?",
                     (failed, locked_until, name)),
                    self.audit_stmt(name, "login.failed", name,
                                    f"{failed} in a row" + (", locked" if locked_until else ""))])

    # ------------------------------------------------------------------ sessions
    def open_session(self, token: str, name: str, csrf: str, ttl_s: float) -> None:
        now = time.time()
        self.write([("DELETE FROM web_sessions WHERE expires < ?", (now,)),
                    ("INSERT INTO web_sessions (token, name, csrf, created, expires) "
                     "VALUES (?,?,?,?,?)", (token, name, csrf, now, now + ttl_s)),
                    ("UPDATE web_users SET failed=0, locked_until=0 WHERE name=?", (name,)),
                    self.audit_stmt(name, "login", name)])

    def session(self, token: str) -> Session | None:
        rows = self.query("SELECT s.token, s.name, u.role, s.csrf, s.expires FROM web_sessions s "
                          "JOIN web_users u ON u.name = s.name WHERE s.token=?", (token,))
        return Session(*rows[0]) if rows else None

    def close_session(self, token: str, name: str) -> None:
        self.write([("DELETE FROM web_sessions WHERE token=?", (token,)),
                    self.audit_stmt(name, "logout", name)])
