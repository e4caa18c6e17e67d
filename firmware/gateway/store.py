"""The gateway's durable store: every relayed event is committed here before its PUBACK.

One SQLite file (WAL, ``synchronous=FULL``), one writer thread (group commit).  Per device it
keeps the contiguous watermark of what the gateway holds (``wm``, published to the device)
and the watermark the store server confirmed (``store_wm``); rows above ``store_wm`` are kept
until the store confirms them, and ``keep_confirmed`` rows below it are kept as history (so a
reused seq with different content is still recognised as a conflict).
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from storeedge import dedupe, durable
from storeedge.events import Envelope
from storeedge.ingest import Rejection, Watermark, declared_ranges

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    dev TEXT NOT NULL, seq INTEGER NOT NULL, prio INTEGER NOT NULL, type TEXT NOT NULL,
    ts TEXT NOT NULL, received REAL NOT NULL,
    payload BLOB,               -- NULL: a seq accounted for by a coalesced/salvaged event
    PRIMARY KEY (dev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
    dev TEXT PRIMARY KEY, kind TEXT NOT NULL, store TEXT NOT NULL,
    wm INTEGER NOT NULL DEFAULT 0, store_wm INTEGER NOT NULL DEFAULT 0,
    received INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0, last_seen REAL
);
CREATE TABLE IF NOT EXISTS rejects (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_control ON events (dev, seq)
    WHERE type IN ('telemetry.coalesced', 'outbox.salvaged');
"""


class Incoming(NamedTuple):
    """One received message, screened: an envelope (and its raw payload) or a rejection."""

    event: Envelope | Rejection
    payload: bytes


class Confirm(NamedTuple):
    """The store server holds every event of ``dev`` up to ``seq``."""

    dev: str
    seq: int


class Seed(NamedTuple):
    """The store server holds every event of ``dev`` up to ``seq`` and we hold less (our
    database was lost): take ``seq`` as held and confirmed, so forwarding starts above it."""

    dev: str
    kind: str
    store: str
    seq: int


class Lost(NamedTuple):
    """Seqs ``first..last`` of ``dev`` are held neither here nor on the device (acknowledged
    by a gateway whose database was lost, then pruned by the device): account for them."""

    dev: str
    kind: str
    store: str
    first: int
    last: int


class AckEpoch(NamedTuple):
    """Where the gateway's watermarks come from: ``epoch`` names its database (a new one
    after a lost database), ``gen`` counts its runs on that database (persisted). With a
    per-run counter they order every watermark the gateway ever published."""

    epoch: str
    gen: int


class Outcome(NamedTuple):
    """What happened to an incoming message: stored, duplicate, conflict or rejected:<why>."""

    status: str
    dev: str | None


@dataclass
class DeviceState:
    """In-memory view of one device (mirrors its ``devices`` row)."""

    dev: str
    kind: str
    store: str
    mark: Watermark
    store_wm: int = 0                 # persisted store watermark (pruning, restarts)
    counts: Counter = field(default_factory=Counter)
    dirty: bool = False
    confirmed: int = 0                # store watermark as last heard (forwarding decisions)
    durable_wm: int = 0               # the part of ``mark`` committed to disk (forwardable)

    def __post_init__(self) -> None:
        self.confirmed = max(self.confirmed, self.store_wm)
        self.durable_wm = max(self.durable_wm, self.mark.wm)

    def hear_confirmation(self, seq: int) -> bool:
        """Take the store's watermark at once (the write to disk follows); True if it moved.

        It may move down: a store-side mark below ours (the store lost or never had those
        events, or ours came from a forged or stale ack) re-opens them for re-sending --
        confirmed rows are kept (``keep_confirmed``), so a wrong mark costs a resend.
        """
        seq = min(seq, self.mark.wm)
        if seq == self.confirmed:
            return False
        self.confirmed = seq
        return True


class GatewayStore:
    """Durable store + watermarks of the relay.

    Args:
        path: SQLite file.
        keep_confirmed: rows kept per device below the store's watermark.
        on_committed: called on the writer thread after each commit with the set of device
            ids whose gateway watermark moved (to publish acks).
    """

    def __init__(self, path: str, *, keep_confirmed: int = 10_000, gather_s: float = 0.0,
                 on_committed: Callable[[set[str]], None] | None = None):
        self.path = path
        self.keep_confirmed = keep_confirmed
        self.conn = self._open()
        self.epoch = self._new_generation()
        # the forwarder reads committed rows on a connection of its own (WAL: readers never
        # wait for the writer's fsync, the writer never waits for a read)
        self.reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._read_lock = threading.Lock()
        self.devices: dict[str, DeviceState] = {}
        self.rejects: Counter = Counter()
        self._moved: set[str] = set()
        self._on_committed = on_committed
        self._load()
        self.committer = durable.GroupCommitter(self.conn, self._apply, name="gateway-store",
                                                gather_s=gather_s, on_rollback=self._load,
                                                after_commit=self._after_commit)

    def _open(self):
        try:
            conn = durable.open_db(self.path)
        except durable.CorruptDatabase as exc:
            moved = durable.move_aside(self.path)
            log.critical("gateway store %s is corrupt (%s); kept as %s, starting a fresh one: "
                         "devices will re-send everything above their watermark",
                         self.path, exc, moved)
            conn = durable.open_db(self.path)
        conn.executescript(SCHEMA)
        return conn

    def _new_generation(self) -> "AckEpoch":
        """This database's random epoch id (a new one with a new database: a lost one's
        watermarks are void) and this run's generation (one more than the last run's),
        committed before anything is acknowledged."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            meta = dict(self.conn.execute("SELECT key, value FROM meta"))
            epoch = meta.get("epoch") or uuid.uuid4().hex[:16]
            gen = int(meta.get("gen", "0")) + 1
            self.conn.executemany("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                                  "SET value=excluded.value",
                                  (("epoch", epoch), ("gen", str(gen))))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return AckEpoch(epoch, gen)

    def _load(self) -> None:
        self.devices.clear()
        for dev, kind, store, wm, store_wm in self.conn.execute(
                "SELECT dev, kind, store, wm, store_wm FROM devices"):
            above = [r[0] for r in self.conn.execute(
                "SELECT seq FROM events WHERE dev=? AND seq>?", (dev, wm))]
            self.devices[dev] = DeviceState(dev, kind, store, Watermark(wm, above), store_wm)
        self.rejects = Counter(dict(self.conn.execute("SELECT reason, count FROM rejects")))

    # ------------------------------------------------------------------ writing

    def submit(self, item: Incoming | Confirm, callback=None) -> durable.Ticket:
        """Queue an item for the next group commit."""
        return self.committer.submit(item, callback)

    def _apply(self, conn, items: list) -> list:
        out = []
        now = time.time()
        for item in items:
            if isinstance(item, Confirm):
                out.append(self._confirm(conn, item))
            elif isinstance(item, (Seed, Lost)):
                out.append(self._recover(conn, item, now))
            elif isinstance(item.event, Rejection):
                self.rejects[item.event.reason] += 1
                conn.execute("INSERT INTO rejects VALUES (?, 1) ON CONFLICT(reason) DO UPDATE "
                             "SET count = count + 1", (item.event.reason,))
                out.append(Outcome("rejected:" + item.event.reason, None))
            else:
                out.append(self._ingest(conn, item.event, item.payload, now))
        self._flush_devices(conn, now)
        return out

    def _state(self, conn, env: Envelope | Seed | Lost) -> DeviceState:
        state = self.devices.get(env.dev)
        if state is None:
            state = DeviceState(env.dev, env.kind, env.store, Watermark())
            conn.execute("INSERT OR IGNORE INTO devices (dev, kind, store) VALUES (?, ?, ?)",
                         (env.dev, env.kind, env.store))
            self.devices[env.dev] = state
        return state

    def _recover(self, conn, item: Seed | Lost, now: float) -> Outcome:
        """Disk-loss recovery: raise the mark over what the store holds (``Seed``) or over
        what is gone for good (``Lost``, with placeholders that are never forwarded)."""
        state = self._state(conn, item)
        before = state.mark.wm
        if isinstance(item, Seed):
            if item.seq <= before:
                return Outcome("seed-stale", item.dev)
            state.mark.add_range(1, item.seq)
            state.store_wm = max(state.store_wm, min(item.seq, state.mark.wm))
            state.confirmed = max(state.confirmed, state.store_wm)
            log.warning("store holds %s up to seq %d, we held %d (lost database?): "
                        "taking it as held", item.dev, item.seq, before)
        else:
            span = dedupe.clip(item.first, item.last, before)
            if span is None:
                return Outcome("lost-stale", item.dev)
            conn.executemany("INSERT INTO events (dev, seq, prio, type, ts, received, payload) "
                             "VALUES (?,?,3,'placeholder','',?,NULL) ON CONFLICT DO NOTHING",
                             ((item.dev, s, now) for s in range(span.first, span.last + 1)))
            state.mark.add_range(span.first, span.last)
        state.dirty = True
        if state.mark.wm != before:
            self._moved.add(item.dev)
        return Outcome("recovered", item.dev)

    def _ingest(self, conn, env: Envelope, payload: bytes, now: float) -> Outcome:
        state = self._state(conn, env)
        state.dirty = True
        cur = conn.execute("INSERT INTO events (dev, seq, prio, type, ts, received, payload) "
                           "VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                           (env.dev, env.seq, env.prio, env.type, env.ts, now, payload))
        if cur.rowcount == 0:
            return self._duplicate(conn, state, env, payload)
        if env.seq <= state.mark.wm:
            # Below the watermark but pruned long ago: it was held once; don't keep it twice.
            conn.execute("DELETE FROM events WHERE dev=? AND seq=?", (env.dev, env.seq))
            state.counts["duplicates"] += 1
            return Outcome("duplicate", env.dev)
        before = state.mark.wm
        state.mark.add(env.seq)
        for lo, hi in declared_ranges(env):
            self._account(conn, state, env, lo, hi, now)
        state.counts["received"] += 1
        if state.mark.wm != before:
            self._moved.add(env.dev)
        return Outcome("stored", env.dev)

    def _account(self, conn, state: DeviceState, env: Envelope, lo: int, hi: int,
                 now: float) -> None:
        """Placeholders for seqs a coalesced/salvaged event accounts for (above the mark;
        held ones keep their row)."""
        span = dedupe.clip(lo, hi, state.mark.wm)
        if span is None:
            return
        conn.executemany("INSERT INTO events (dev, seq, prio, type, ts, received, payload) "
                         "VALUES (?,?,3,'placeholder',?,?,NULL) ON CONFLICT DO NOTHING",
                         ((env.dev, s, env.ts, now) for s in range(span.first, span.last + 1)))
        state.mark.add_range(span.first, span.last)

    def _duplicate(self, conn, state: DeviceState, env: Envelope, payload: bytes) -> Outcome:
        row = conn.execute("SELECT payload FROM events WHERE dev=? AND seq=?",
                           (env.dev, env.seq)).fetchone()
        stored = dedupe.ABSENT if row is None else None if row[0] is None else bytes(row[0])
        verdict = dedupe.judge(stored, payload)
        if verdict is dedupe.Verdict.FILL:
            # a real event where a summary claimed the seq (a forged summary the store will
            # refuse, or a race): keep the event, never let a claim cost it
            conn.execute("UPDATE events SET prio=?, type=?, ts=?, payload=? WHERE dev=? AND "
                         "seq=? AND payload IS NULL",
                         (env.prio, env.type, env.ts, payload, env.dev, env.seq))
            state.counts["received"] += 1
            return Outcome("stored", env.dev)
        if verdict is dedupe.Verdict.CONFLICT:
            state.counts["conflicts"] += 1
            log.error("device %s reused seq %d with different content (outbox reset?): "
                      "rejected, the stored event is kept", env.dev, env.seq)
            return Outcome("conflict", env.dev)
        state.counts["duplicates"] += 1
        return Outcome("duplicate", env.dev)

    def _confirm(self, conn, item: Confirm) -> Outcome:
        state = self.devices.get(item.dev)
        if state is None or item.seq == state.store_wm:
            return Outcome("confirm-stale", item.dev)
        if item.seq > state.mark.wm:
            log.warning("store watermark %d for %s is above ours (%d): capped",
                        item.seq, item.dev, state.mark.wm)
        seq = min(item.seq, state.mark.wm)
        if seq < state.store_wm:
            log.warning("store watermark for %s went down from %d to %d: re-sending what it "
                        "lacks", item.dev, state.store_wm, seq)
        state.store_wm = seq
        state.dirty = True
        # keep_confirmed rows below the mark stay: a lower mark later re-sends from them
        conn.execute("DELETE FROM events WHERE dev=? AND seq<=?",
                     (item.dev, seq - self.keep_confirmed))
        return Outcome("confirmed", item.dev)

    def _flush_devices(self, conn, now: float) -> None:
        for state in self.devices.values():
            if not state.dirty:
                continue
            c = state.counts
            conn.execute("UPDATE devices SET wm=?, store_wm=?, received=received+?, "
                         "duplicates=duplicates+?, conflicts=conflicts+?, last_seen=? "
                         "WHERE dev=?", (state.mark.wm, state.store_wm, c["received"],
                                         c["duplicates"], c["conflicts"], now, state.dev))
            c.clear()
            state.dirty = False

    def _after_commit(self, _outcomes: list) -> None:
        moved, self._moved = self._moved, set()
        for dev in moved:
            state = self.devices.get(dev)
            if state is not None:
                state.durable_wm = state.mark.wm
        if moved and self._on_committed is not None:
            self._on_committed(moved)

    # ------------------------------------------------------------------ reading

    def forwardable(self, dev: str, after: int, upto: int, limit: int) -> list[tuple]:
        """Rows ``(seq, prio, type, payload)`` of ``dev`` with ``after < seq <= upto``, in order.

        ``payload`` is None for placeholders (seqs accounted for by a coalesced/salvaged event).
        Read on the reader connection: only committed rows, so ``upto`` must be at most the
        device's ``durable_wm`` (every seq up to it is committed, or pruned as confirmed).
        """
        return self._read("SELECT seq, prio, type, payload FROM events WHERE dev=? AND seq>? "
                          "AND seq<=? ORDER BY seq LIMIT ?", (dev, after, upto, limit))

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        with self._read_lock:
            return self.reader.execute(sql, params).fetchall()

    def control_rows(self, dev: str, after: int, upto: int) -> list[tuple]:
        """Coalesced/salvaged events of ``dev`` in ``(after, upto]``: the ones that account
        for seqs the store would otherwise wait for (sent even when the window is full)."""
        # the planner would take the primary key and scan every held row of the range on
        # each round of a full window
        return self._read("SELECT seq, prio, type, payload FROM events INDEXED BY "
                          "events_control WHERE dev=? AND seq>? AND seq<=? AND type IN "
                          "('telemetry.coalesced', 'outbox.salvaged') ORDER BY seq",
                          (dev, after, upto))

    def close(self) -> None:
        self.committer.close()
        with self.committer.lock:
            self.conn.close()
        with self._read_lock:
            self.reader.close()


class DeviceReport(NamedTuple):
    """One line of ``storeedge gateway status``."""

    dev: str
    kind: str
    last_seq: int
    wm: int
    store_wm: int
    backlog: int
    oldest_age_s: float | None
    received: int
    duplicates: int
    conflicts: int


def status_report(path: str, now: float | None = None) -> tuple[list[DeviceReport], dict]:
    """Per-device state and rejection counts, read from the store file (safe while running)."""
    import sqlite3

    now = time.time() if now is None else now
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        reports = [_device_report(conn, row, now) for row in conn.execute(
            "SELECT dev, kind, wm, store_wm, received, duplicates, conflicts FROM devices "
            "ORDER BY dev")]
        rejects = dict(conn.execute("SELECT reason, count FROM rejects ORDER BY reason"))
    finally:
        conn.close()
    return reports, rejects


def _device_report(conn, row: tuple, now: float) -> DeviceReport:
    dev, kind, wm, store_wm, received, dups, conflicts = row
    last, backlog, oldest = conn.execute(
        "SELECT MAX(seq), SUM(seq > ? AND payload IS NOT NULL), "
        "MIN(CASE WHEN seq > ? THEN received END) FROM events WHERE dev=?",
        (store_wm, store_wm, dev)).fetchone()
    age = None if oldest is None else max(0.0, now - oldest)
    return DeviceReport(dev, kind, max(last or 0, wm), wm, store_wm, backlog or 0, age,
                        received, dups, conflicts)


def format_status(reports: list[DeviceReport], rejects: dict[str, Any]) -> str:
    """The status table, plain ASCII at 80 columns."""
    lines = [f"{'device':<16} {'kind':<10} {'last seq':>9} {'held':>9} {'store':>9} "
             f"{'backlog':>8} {'oldest':>8}"]
    for r in reports:
        age = "-" if r.oldest_age_s is None else f"{r.oldest_age_s:.0f}s"
        lines.append(f"{r.dev:<16.16} {r.kind:<10.10} {r.last_seq:>9} {r.wm:>9} "
                     f"{r.store_wm:>9} {r.backlog:>8} {age:>8}")
    if not reports:
        lines.append("(no devices yet)")
    rej = ", ".join(f"{k}={v}" for k, v in rejects.items()) or "none"
    lines.append(f"rejected messages: {rej}")
    return "\n".join(lines)
