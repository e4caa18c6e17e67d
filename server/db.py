"""The store database: SQLite (default) or PostgreSQL, same schema, idempotent inserts.

``UNIQUE(dev, seq)`` makes every insert idempotent: a duplicate is counted, not stored.
Several store-server instances may share one database (shared subscription): watermarks are
computed from the table, never from one instance's memory, and only ever move up.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from typing import Iterable, NamedTuple, Sequence

from storeedge import durable
from storeedge.server.exc import StoreDatabaseError

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS events (
        dev TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, store TEXT NOT NULL,
        type TEXT NOT NULL, prio INTEGER NOT NULL, ts TEXT NOT NULL,
        received DOUBLE PRECISION NOT NULL,
        body TEXT,                                  -- JSON; NULL for a placeholder
        placeholder INTEGER NOT NULL DEFAULT 0,     -- 1: accounted for by coalesced/salvaged
        UNIQUE (dev, seq))""",
    """CREATE TABLE IF NOT EXISTS devices (
        dev TEXT PRIMARY KEY, kind TEXT NOT NULL, store TEXT NOT NULL,
        wm BIGINT NOT NULL DEFAULT 0, duplicates BIGINT NOT NULL DEFAULT 0,
        conflicts BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS gaps (
        dev TEXT NOT NULL, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL,
        reason TEXT NOT NULL, detected DOUBLE PRECISION NOT NULL,
        resolved DOUBLE PRECISION, PRIMARY KEY (dev, first_seq))""",
    """CREATE TABLE IF NOT EXISTS rejects (reason TEXT PRIMARY KEY, count BIGINT NOT NULL)""",
    # end-to-end seal failures: what a gateway or broker altered, reordered or invented
    """CREATE TABLE IF NOT EXISTS integrity (
        dev TEXT NOT NULL, seq BIGINT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
        topic TEXT NOT NULL, count BIGINT NOT NULL DEFAULT 1,
        detected DOUBLE PRECISION NOT NULL, last_detected DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (dev, seq, reason))""",
]
MAX_INTEGRITY_ROWS = 100_000     # beyond this, seal failures are only counted (in rejects)
SPANS_PER_QUERY = 200            # seq ranges per lookup query (2 parameters each)


class Integrity(NamedTuple):
    """One recorded seal failure (times in epoch seconds)."""

    dev: str
    seq: int
    reason: str
    detail: str
    topic: str
    count: int
    detected: float
    last_detected: float


class Row(NamedTuple):
    """One event to insert (``body`` None for a placeholder)."""

    dev: str
    seq: int
    kind: str
    store: str
    type: str
    prio: int
    ts: str
    received: float
    body: str | None


class StoreDB:
    """A connection to the store database with portable SQL.

    Args:
        url: ``sqlite:///path/to/store.db``, a plain file path, or ``postgresql://...``.
    """

    def __init__(self, url: str):
        self.url = url
        self.is_pg = url.startswith(("postgresql://", "postgres://"))
        self.lock = threading.RLock()
        self.conn = self._connect()
        self.ph = "%s" if self.is_pg else "?"
        with self.lock:
            for stmt in SCHEMA:
                self._exec(stmt)
            self._commit_now()

    def _connect(self):
        if self.is_pg:
            try:
                import psycopg
                return psycopg.connect(self.url, autocommit=False)
            except Exception as exc:
                raise StoreDatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
        path = self.url[len("sqlite:///"):] if self.url.startswith("sqlite:///") else self.url
        try:
            return durable.open_db(path)
        except durable.CorruptDatabase as exc:
            raise StoreDatabaseError(f"store database {path} is corrupt: {exc}") from exc

    # ------------------------------------------------------------------ plumbing

    def sql(self, text: str) -> str:
        """``?`` placeholders rewritten for the backend."""
        return text.replace("?", self.ph) if self.is_pg else text

    def _exec(self, text: str, params: Iterable = ()):
        cur = self.conn.cursor()
        cur.execute(self.sql(text), tuple(params))
        return cur

    def _commit_now(self) -> None:
        if self.is_pg:
            self.conn.commit()

    def transactions(self):
        """Transaction control for :class:`~storeedge.durable.GroupCommitter`."""
        if self.is_pg:
            return _PgTransactions(self.conn)
        return durable.SqliteTransactions(self.conn)

    def query(self, text: str, params: Iterable = ()) -> list[tuple]:
        """A read outside the writer's transactions."""
        with self.lock:
            rows = self._exec(text, params).fetchall()
            self._commit_now()
            return rows

    # ------------------------------------------------------------------ writes (in a txn)

    def insert_events(self, rows: list[Row]) -> None:
        """Insert rows known not to be there yet (duplicates are still ignored, never raised)."""
        cur = self.conn.cursor()
        cur.executemany(self.sql("INSERT INTO events (dev, seq, kind, store, type, prio, ts, "
                                 "received, body, placeholder) VALUES (?,?,?,?,?,?,?,?,?,?) "
                                 "ON CONFLICT (dev, seq) DO NOTHING"),
                        [(*row, 1 if row.body is None else 0) for row in rows])

    def held(self, dev: str, spans: Sequence[tuple[int, int]]) -> dict[int, str | None]:
        """``seq -> body`` (None: a placeholder) of ``dev``'s stored events within the seq
        ``spans`` (``(first, last)``, both included): one query (per 200 spans)."""
        out: dict[int, str | None] = {}
        for i in range(0, len(spans), SPANS_PER_QUERY):
            part = spans[i:i + SPANS_PER_QUERY]
            where = " OR ".join(["seq BETWEEN ? AND ?"] * len(part))
            params = [dev, *(v for span in part for v in span)]
            out.update(self._exec(f"SELECT seq, body FROM events WHERE dev=? AND ({where})",
                                  params).fetchall())
        return out

    def ensure_device(self, dev: str, kind: str, store: str) -> None:
        self._exec("INSERT INTO devices (dev, kind, store) VALUES (?,?,?) "
                   "ON CONFLICT (dev) DO NOTHING", (dev, kind, store))

    def count(self, dev: str, column: str, n: int) -> None:
        if column not in ("duplicates", "conflicts"):
            raise ValueError(column)
        self._exec(f"UPDATE devices SET {column} = {column} + ? WHERE dev=?", (n, dev))

    def count_reject(self, reason: str) -> None:
        self._exec("INSERT INTO rejects (reason, count) VALUES (?, 1) ON CONFLICT (reason) "
                   "DO UPDATE SET count = rejects.count + 1", (reason,))

    def record_integrity(self, item: Integrity) -> None:
        """Insert (or count again) one seal failure, inside the writer's transaction."""
        self._exec("INSERT INTO integrity (dev, seq, reason, detail, topic, count, detected, "
                   "last_detected) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (dev, seq, reason) "
                   "DO UPDATE SET count = integrity.count + 1, last_detected = ?",
                   (*item, item.last_detected))

    def integrity_rows(self) -> int:
        """How many seal failures are recorded."""
        return self.query("SELECT COUNT(*) FROM integrity")[0][0]

    def integrity(self, limit: int = 1000) -> list[Integrity]:
        """Recorded seal failures, newest first."""
        return [Integrity(*r) for r in self.query(
            "SELECT dev, seq, reason, detail, topic, count, detected, last_detected FROM "
            "integrity ORDER BY last_detected DESC LIMIT ?", (limit,))]

    def watermark(self, dev: str) -> int:
        """``dev``'s current watermark (0 for a new device), inside the writer's transaction."""
        row = self._exec("SELECT wm FROM devices WHERE dev=?", (dev,)).fetchone()
        return row[0] if row else 0

    def advance_watermark(self, dev: str) -> int:
        """Move ``dev``'s watermark over every contiguous seq now stored; returns it."""
        wm = self._exec("SELECT wm FROM devices WHERE dev=?", (dev,)).fetchone()[0]
        while True:
            seqs = [r[0] for r in self._exec(
                "SELECT seq FROM events WHERE dev=? AND seq>? ORDER BY seq LIMIT 5000",
                (dev, wm)).fetchall()]
            moved = 0
            for s in seqs:
                if s != wm + 1:
                    break
                wm, moved = s, moved + 1
            if moved < 5000:
                break
        self._exec("UPDATE devices SET wm = CASE WHEN wm < ? THEN ? ELSE wm END WHERE dev=?",
                   (wm, wm, dev))
        return wm

    def record_gap(self, dev: str, first: int, last: int, reason: str, now: float) -> None:
        self._exec("INSERT INTO gaps (dev, first_seq, last_seq, reason, detected) "
                   "VALUES (?,?,?,?,?) ON CONFLICT (dev, first_seq) DO NOTHING",
                   (dev, first, last, reason, now))

    def record_unrecoverable(self, dev: str, first: int, last: int, now: float) -> None:
        """Seqs reported gone for good (a gateway lost them): an open ``hole`` inside the
        range becomes this ``unrecoverable`` gap (never resolved, never replayed)."""
        self._exec("DELETE FROM gaps WHERE dev=? AND reason='hole' AND resolved IS NULL AND "
                   "first_seq>=? AND last_seq<=?", (dev, first, last))
        self._exec("INSERT INTO gaps (dev, first_seq, last_seq, reason, detected) "
                   "VALUES (?,?,?,'unrecoverable',?) ON CONFLICT (dev, first_seq) DO UPDATE "
                   "SET reason='unrecoverable', last_seq=excluded.last_seq",
                   (dev, first, last, now))

    def resolve_gaps(self, dev: str, wm: int, now: float) -> None:
        self._exec("UPDATE gaps SET resolved=? WHERE dev=? AND reason='hole' AND "
                   "resolved IS NULL AND last_seq <= ?", (now, dev, wm))

    # ------------------------------------------------------------------ reads

    def watermarks(self) -> list[tuple[str, str, str, int]]:
        """``(dev, kind, store, wm)`` of every device."""
        return self.query("SELECT dev, kind, store, wm FROM devices ORDER BY dev")

    def seqs_above(self, dev: str, wm: int, limit: int = 10000) -> list[int]:
        return [r[0] for r in self.query("SELECT seq FROM events WHERE dev=? AND seq>? "
                                         "ORDER BY seq LIMIT ?", (dev, wm, limit))]

    def device_counts(self) -> list[tuple]:
        """``(dev, kind, stored, placeholders, wm, duplicates, conflicts)`` per device."""
        return self.query(
            "SELECT d.dev, d.kind, "
            "(SELECT COUNT(*) FROM events e WHERE e.dev=d.dev AND e.placeholder=0), "
            "(SELECT COUNT(*) FROM events e WHERE e.dev=d.dev AND e.placeholder=1), "
            "d.wm, d.duplicates, d.conflicts FROM devices d ORDER BY d.dev")

    def events_of(self, dev: str) -> list[tuple[int, str, dict | None]]:
        """``(seq, type, body)`` of every stored event of ``dev``, in seq order."""
        rows = self.query("SELECT seq, type, body FROM events WHERE dev=? ORDER BY seq", (dev,))
        return [(s, t, json.loads(b) if b is not None else None) for s, t, b in rows]

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class _PgTransactions:
    def __init__(self, conn):
        self.conn = conn

    def begin(self) -> None:
        pass   # psycopg opens a transaction on the first statement

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:
            pass


def open_store_db(url: str) -> StoreDB:
    """Open (and create the schema of) the store database at ``url``."""
    try:
        return StoreDB(url)
    except (sqlite3.Error, OSError) as exc:
        raise StoreDatabaseError(f"cannot open store database {url}: {exc}") from exc
