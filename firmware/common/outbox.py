"""The device outbox: every event is committed here (fsync) before anyone hears of it.

* ``seq`` is assigned inside the commit, strictly increasing, persisted (``meta.last_seq``) and
  leased ahead in a sidecar file (``<path>.seq``) so that even a corrupt database never makes a
  device reuse a ``seq``.
* Writers block in :meth:`Outbox.append` until their group commit is durable.
* Bounded in bytes, with an explicit policy per priority when full:

  ========  ==============================================================================
  prio      when the event does not fit
  ========  ==============================================================================
  0-1       prune acknowledged history, coalesce telemetry; may use the reserve
            (``reserve_fraction``); past the hard limit :class:`OutboxFull` is raised.
  2         the same, but only up to the soft limit (the reserve stays for 0-1).
  3         prune, coalesce; then :class:`TelemetryDropped` (counted, never silent).
  ========  ==============================================================================

  Coalescing merges pending telemetry of one type and one ``coalesce_interval_s`` bucket into
  a ``telemetry.coalesced`` event (min/max/last/count per numeric field) with a fresh ``seq``
  that lists the replaced seqs in ``covers``; priorities 0-2 are never touched.
* A corrupt file is moved aside (kept for salvage), readable rows are copied into a fresh
  file, and an ``outbox.salvaged`` event says so, listing seqs that are gone for good (at
  most :data:`~storeedge.ingest.MAX_DECLARED_SPAN` back: receivers refuse
  older claims, and no outbox holds that many events).
* With an end-to-end key (``security.e2e_key``) every envelope is sealed as it is stored
  (:mod:`storeedge.seal`): the bytes sent are the bytes sealed, summaries included.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

from storeedge.drivers.clock import Clock, SystemClock
from storeedge import durable
from storeedge.atomic import write_atomic
from storeedge.core_events import (FieldSummary, OutboxSalvaged,
                                                   TelemetryCoalesced)
from storeedge.events import Envelope, Prio, body_to_dict, format_ts, parse_ts
from storeedge.exc import (EventTooLarge, OutboxError, OutboxFull,
                                           TelemetryDropped)
from storeedge.ingest import MAX_DECLARED_SPAN
from storeedge.settings import OutboxSection
from storeedge.seal import SUFFIX_BYTES, load_key, seal, split

log = logging.getLogger(__name__)

SEQ_LEASE = 10_000
SLOW_COMMIT_S = 5.0   # seconds: an append waiting this long is logged with thread stacks
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    prio INTEGER NOT NULL,
    type TEXT NOT NULL,
    ts TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_pending ON events (acked, seq);
CREATE INDEX IF NOT EXISTS events_control ON events (seq)
    WHERE acked=0 AND type IN ('outbox.salvaged', 'telemetry.coalesced');
"""


class Identity(NamedTuple):
    """Whose events these are."""

    dev: str
    kind: str
    store: str


class StoredEvent(NamedTuple):
    """A row of the outbox as the sender sees it."""

    seq: int
    prio: int
    type: str
    payload: bytes


class OutboxStats(NamedTuple):
    """Counters for status pages (sizes in bytes)."""

    rows: int
    pending: int
    bytes: int
    max_bytes: int
    last_seq: int
    acked_seq: int
    oldest_pending_ts: str | None
    coalesced: int
    telemetry_dropped: int
    refused: int


@dataclass
class _NewEvent:
    type: str
    prio: int
    body: dict
    ts: str


class Outbox:
    """The durable, bounded event store of one device.

    Args:
        cfg: the ``outbox`` config section (path, bounds, commit timing).
        identity: device id, kind and store stamped on every envelope.
        clock: time source for event timestamps when none is given.
        seal_key: the device's 32-byte end-to-end key (None: envelopes are not sealed).
    """

    def __init__(self, cfg: OutboxSection, identity: Identity, *, clock: Clock | None = None,
                 seal_key: bytes | None = None):
        self.cfg, self.identity = cfg, identity
        self.seal_key = seal_key
        self.clock = clock or SystemClock()
        self.boot = str(uuid.uuid4())
        self.hard_limit = cfg.max_bytes
        self.soft_limit = int(cfg.max_bytes * (1.0 - cfg.reserve_fraction))
        self.coalesced = self.telemetry_dropped = self.refused = 0
        self.generation = 0   # bumped when pending rows are rewritten (sender restarts)
        self.salvage_report: OutboxSalvaged | None = None
        self._slow_reported = float("-inf")   # monotonic time of the last slow-commit report
        self._lock_fd = _exclusive_lock(cfg.path + ".lock")
        try:
            self.conn = self._open()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._load_counters()
        self._committer = durable.GroupCommitter(
            self.conn, self._apply, name=f"outbox-{identity.dev}",
            gather_s=cfg.commit_interval_ms / 1000.0, on_rollback=self._load_counters)
        if self.salvage_report is not None:
            self.append(self.salvage_report)

    # ------------------------------------------------------------------ opening / salvage

    def _open(self):
        path = self.cfg.path
        try:
            conn = durable.open_db(path)
            conn.executescript(SCHEMA)
            return conn
        except durable.CorruptDatabase as exc:
            log.error("outbox %s is corrupt (%s): moving it aside and salvaging", path, exc)
            return self._salvage(str(exc))

    def _salvage(self, reason: str):
        path = self.cfg.path
        moved = durable.move_aside(path, self.clock.time())
        rows, bad = durable.salvage_rows(moved, "events", "seq, prio, type, ts, payload, size",
                                         "seq", hi=self._leased_ceiling() or None)
        conn = durable.open_db(path)
        conn.executescript(SCHEMA)
        restart = max([self._leased_ceiling()] + [r[0] for r in rows]) + 1
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events (seq, prio, type, ts, payload, size) "
                         "VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (restart - 1,))
        conn.execute("COMMIT")
        self._write_lease(restart - 1 + SEQ_LEASE)
        log.warning("outbox salvaged: %d events recovered, %d unreadable ranges, kept %s",
                    len(rows), bad, moved)
        got = {r[0] for r in rows}
        floor = max(1, restart - MAX_DECLARED_SPAN)   # older seqs: long delivered and pruned
        lost = _ranges([s for s in range(floor, restart) if s not in got])
        self.salvage_report = OutboxSalvaged(moved_to=moved, reason=reason[:200],
                                             recovered=len(rows), unreadable=bad, lost=lost)
        return conn

    def _lease_path(self) -> str:
        return self.cfg.path + ".seq"

    def _leased_ceiling(self) -> int:
        try:
            with open(self._lease_path(), encoding="ascii") as fh:
                return int(fh.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_lease(self, ceiling: int) -> None:
        write_atomic(self._lease_path(), str(ceiling).encode("ascii"))
        self._lease = ceiling

    def _load_counters(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        self.last_seq = max(row[0] if row else 0,
                            self.conn.execute("SELECT COALESCE(MAX(seq),0) FROM events")
                            .fetchone()[0])
        row = self.conn.execute("SELECT value FROM meta WHERE key='acked_seq'").fetchone()
        self.acked_seq = row[0] if row else 0
        self.bytes = self.conn.execute("SELECT COALESCE(SUM(size),0) FROM events").fetchone()[0]
        self._lease = self._leased_ceiling()
        if self._lease < self.last_seq + 1:
            self._write_lease(self.last_seq + SEQ_LEASE)

    # ------------------------------------------------------------------ appending

    def append(self, body: Any, *, ts: float | None = None, timeout: float | None = None
               ) -> Envelope:
        """Store an event durably and return its envelope (blocks until committed).

        The writer answers every event (committed, or failed with an error), so by default
        this waits for that answer however slow the disk is; a wait longer than
        :data:`SLOW_COMMIT_S` is logged with every thread's stack (at most once a minute).

        Args:
            body: an instance of a registered event dataclass.
            ts: the event's own time (epoch seconds); None means now.
            timeout: bound on the wait, seconds (None: until answered). A TimeoutError
                means "not answered yet": the event may still be committed.
        Raises:
            OutboxFull / TelemetryDropped: no room (see the module docstring).
            EventTooLarge: the encoded event exceeds ``max_event_bytes``.
            OutboxError: the commit failed (nothing of it was stored).
        """
        ticket = self.submit(body, ts=ts)
        first = SLOW_COMMIT_S if timeout is None else min(SLOW_COMMIT_S, timeout)
        try:
            return ticket.wait(first)
        except TimeoutError:
            if timeout is not None and timeout <= SLOW_COMMIT_S:
                raise
        self._report_slow_commit()
        return ticket.wait(None if timeout is None else timeout - first)

    def _report_slow_commit(self) -> None:
        """Log that a commit has waited :data:`SLOW_COMMIT_S`, with every thread's stack
        (at most once a minute), so a stall shows where the writer is."""
        now = time.monotonic()
        if now - self._slow_reported < 60.0:
            return
        self._slow_reported = now
        log.error("outbox %s: a commit has waited %.0f s (writer alive: %s, %d commits so "
                  "far); thread stacks:\n%s", self.cfg.path, SLOW_COMMIT_S,
                  self._committer.alive, self._committer.commits, _thread_stacks())

    def submit(self, body: Any, *, ts: float | None = None, callback=None) -> durable.Ticket:
        """Queue an event for the next group commit without waiting (ticket.wait() blocks)."""
        etype = getattr(body, "EVENT_TYPE", None)
        if etype is None:
            raise TypeError(f"{type(body).__name__} is not a registered event type")
        item = _NewEvent(etype, int(body.EVENT_PRIO), body_to_dict(body),
                         format_ts(self.clock.time() if ts is None else ts))
        return self._committer.submit(item, callback)

    def _apply(self, conn, items: list[_NewEvent]) -> list:
        out: list = []
        for item in items:
            try:
                out.append(self._insert(conn, item))
            except (OutboxFull, EventTooLarge) as exc:
                out.append(exc)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (self.last_seq,))
        if self.last_seq >= self._lease:
            self._write_lease(self.last_seq + SEQ_LEASE)
        return out

    def _insert(self, conn, item: _NewEvent) -> Envelope:
        size = len(self._envelope(item, self.last_seq + 1).to_json())
        size += SUFFIX_BYTES if self.seal_key is not None else 0
        if size > self.cfg.max_event_bytes:
            self.refused += 1
            raise EventTooLarge(f"{item.type} event of {size} bytes exceeds "
                                f"outbox.max_event_bytes={self.cfg.max_event_bytes}")
        self._make_room(conn, item.prio, size + 16)   # coalescing may lengthen the seq
        env = self._envelope(item, self.last_seq + 1)
        self._store(conn, env)
        return env

    def _store(self, conn, env: Envelope) -> None:
        payload = env.to_json()
        if self.seal_key is not None:
            payload = seal(self.seal_key, payload)
        conn.execute("INSERT INTO events (seq, prio, type, ts, payload, size) VALUES (?,?,?,?,?,?)",
                     (env.seq, env.prio, env.type, env.ts, payload, len(payload)))
        self.last_seq = env.seq
        self.bytes += len(payload)

    def _envelope(self, item: _NewEvent, seq: int) -> Envelope:
        dev, kind, store = self.identity
        return Envelope(dev=dev, kind=kind, store=store, boot=self.boot, seq=seq, ts=item.ts,
                        type=item.type, prio=item.prio, body=item.body)

    # ------------------------------------------------------------------ space policy

    def _make_room(self, conn, prio: int, size: int) -> None:
        limit = self.hard_limit if prio <= Prio.LOSS else self.soft_limit
        if self.bytes + size <= limit:
            return
        self._prune_acked(conn, keep=0, need=self.bytes + size - limit)
        if self.bytes + size <= limit:
            return
        self._coalesce(conn)
        if self.bytes + size <= limit:
            return
        if prio == Prio.TELEMETRY:
            self.telemetry_dropped += 1
            raise TelemetryDropped(f"outbox past its soft limit ({self.bytes} of "
                                   f"{self.soft_limit} bytes): telemetry refused")
        self.refused += 1
        raise OutboxFull(f"outbox full: {self.bytes} + {size} bytes exceeds the "
                         f"{'hard' if prio <= Prio.LOSS else 'soft'} limit of {limit} bytes "
                         f"with nothing left to prune or coalesce (priority {prio})")

    def _prune_acked(self, conn, keep: int, need: int | None = None) -> None:
        rows = conn.execute("SELECT seq, size FROM events WHERE acked=1 ORDER BY seq DESC "
                            "LIMIT -1 OFFSET ?", (keep,)).fetchall()
        if not rows:
            return
        rows.reverse()   # oldest first
        freed, cut = 0, rows[-1][0]
        if need is not None:
            for seq, size in rows:
                freed += size
                cut = seq
                if freed >= need:
                    break
        else:
            freed = sum(size for _seq, size in rows)
        conn.execute("DELETE FROM events WHERE acked=1 AND seq <= ?", (cut,))
        self.bytes -= freed

    def _coalesce(self, conn) -> None:
        rows = conn.execute("SELECT seq, type, ts, payload, size FROM events WHERE acked=0 "
                            "AND prio=? AND type != 'telemetry.coalesced' ORDER BY seq",
                            (int(Prio.TELEMETRY),)).fetchall()
        groups: dict[tuple, list] = {}
        for row in rows:
            bucket = int(parse_ts(row[2]) // self.cfg.coalesce_interval_s)
            groups.setdefault((row[1], bucket), []).append(row)
        for group in groups.values():
            # receivers refuse covers further back than MAX_DECLARED_SPAN from the summary's
            # own seq: older rows stay as they are (still delivered one by one)
            floor = self.last_seq + 1 - MAX_DECLARED_SPAN
            group = [r for r in group if r[0] >= floor]
            if len(group) >= 2:
                self._merge(conn, group)

    def _merge(self, conn, group: list) -> None:
        """Replace ``group`` (same type and bucket) by one summary with a fresh seq.

        The summary lists the replaced seqs in ``covers``; the sender sends it even when its
        window is full, so receivers can account for the replaced seqs and move on.
        """
        seqs = [r[0] for r in group]
        bodies = [json.loads(r[3])["body"] for r in group]
        summary = TelemetryCoalesced(
            of_type=group[0][1], count=len(group), first_ts=group[0][2], last_ts=group[-1][2],
            covers=_ranges(seqs), fields=_summarise(bodies))
        conn.executemany("DELETE FROM events WHERE seq=?", [(s,) for s in seqs])
        self.bytes -= sum(r[4] for r in group)
        item = _NewEvent("telemetry.coalesced", int(Prio.TELEMETRY), body_to_dict(summary),
                         group[-1][2])
        self._store(conn, self._envelope(item, self.last_seq + 1))
        self.coalesced += len(group)
        self.generation += 1
        log.warning("outbox under pressure: coalesced %d %s events (seq %d..%d)",
                    len(group), group[0][1], seqs[0], seqs[-1])

    # ------------------------------------------------------------------ sending side

    def pending_after(self, after_seq: int, limit: int) -> list[StoredEvent]:
        """Unacknowledged events with ``seq > after_seq``, oldest first, at most ``limit``."""
        rows = durable.read_all(self.conn, self._committer.lock,
                                "SELECT seq, prio, type, payload FROM events WHERE acked=0 "
                                "AND seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
        return [self._sendable(r) for r in rows]

    def held_after(self, after_seq: int, limit: int) -> list[StoredEvent]:
        """Every held event (acknowledged history included) with ``seq > after_seq``, oldest
        first, at most ``limit``: what a receiver that lost its store can still get."""
        rows = durable.read_all(self.conn, self._committer.lock,
                                "SELECT seq, prio, type, payload FROM events WHERE seq > ? "
                                "ORDER BY seq LIMIT ?", (after_seq, limit))
        return [self._sendable(r) for r in rows]

    def pending_control(self, after_seq: int) -> list[StoredEvent]:
        """Pending events that account for seqs receivers will never get (salvage, coalescing).

        The sender sends these whatever its window, so a receiver waiting on a lost seq is
        never stuck behind a window that cannot move.
        """
        rows = durable.read_all(self.conn, self._committer.lock,
                                "SELECT seq, prio, type, payload FROM events INDEXED BY "
                                "events_control WHERE acked=0 "
                                "AND seq > ? AND type IN ('outbox.salvaged', 'telemetry.coalesced') "
                                "ORDER BY seq",
                                (after_seq,))
        return [self._sendable(r) for r in rows]

    def _sendable(self, row: tuple) -> StoredEvent:
        """A row as sent: sealed now if it was stored unsealed (written before this device
        had its key, e.g. by an older firmware) -- the device vouches for its own outbox."""
        seq, prio, etype, payload = row
        if self.seal_key is not None and split(payload) is None:
            payload = seal(self.seal_key, bytes(payload))
        return StoredEvent(seq, prio, etype, payload)

    def mark_acked(self, watermark: int) -> int:
        """Record that every event with ``seq <= watermark`` is held durably downstream.

        Returns the number of events newly acknowledged.  Old history beyond ``keep_acked``
        is pruned.
        """
        with self._committer.lock:
            if watermark <= self.acked_seq:
                return 0
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                n = conn.execute("UPDATE events SET acked=1 WHERE acked=0 AND seq <= ?",
                                 (watermark,)).rowcount
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('acked_seq', ?)", (watermark,))
                self._prune_acked(conn, keep=self.cfg.keep_acked)
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                self._load_counters()
                raise
            self.acked_seq = watermark
            return n

    def recent(self, n: int = 20, type_prefix: str | None = None) -> list[Envelope]:
        """The last ``n`` events (acknowledged or not), newest last, optionally by type prefix."""
        sql, params = "SELECT payload FROM events", []
        if type_prefix:
            sql += " WHERE type LIKE ?"
            params.append(type_prefix.replace("%", "") + "%")
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(n)
        rows = durable.read_all(self.conn, self._committer.lock, sql, params)
        return [Envelope.from_json(r[0]) for r in reversed(rows)]

    def stats(self) -> OutboxStats:
        """Current counters."""
        row = durable.read_all(self.conn, self._committer.lock,
                               "SELECT COUNT(*), SUM(acked=0), MIN(CASE WHEN acked=0 THEN ts END) "
                               "FROM events")[0]
        return OutboxStats(rows=row[0], pending=row[1] or 0, bytes=self.bytes,
                           max_bytes=self.hard_limit, last_seq=self.last_seq,
                           acked_seq=self.acked_seq, oldest_pending_ts=row[2],
                           coalesced=self.coalesced, telemetry_dropped=self.telemetry_dropped,
                           refused=self.refused)

    def close(self) -> None:
        """Commit what is queued and close the file."""
        self._committer.close()
        with self._committer.lock:
            self.conn.close()
        os.close(self._lock_fd)


def seal_key_of(security: Any, dev: str = "") -> bytes | None:
    """The device's end-to-end key from its ``security`` section (None: send unsealed).

    Raises:
        storeedge.exc.SealKeyError: ``e2e_key`` names a missing, unreadable or bad file.
    """
    if security is not None and security.e2e_key:
        return load_key(security.e2e_key)
    if security is not None and security.insecure:
        log.warning("security.insecure: %s sends unsealed events", dev or "this device")
    else:
        log.warning("no security.e2e_key: %s sends unsealed events, which a secure store "
                    "server refuses", dev or "this device")
    return None


def _thread_stacks() -> str:
    """Every thread's current stack, named, as text (for a stall report)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return "".join(f"--- thread {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame))
                   for ident, frame in sys._current_frames().items())


def _exclusive_lock(path: str) -> int:
    """Lock ``path`` for this process: two processes on one outbox would hand out one seq twice.

    Raises:
        OutboxError: another process holds the outbox (the kernel drops the lock when a
            process dies, so a crashed app never blocks its successor).
    """
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise OutboxError(f"the outbox {path[:-5]} is in use by another process{holder}; "
                          "only one process may own a device's outbox: stop that one first, "
                          "or give this one another outbox.path") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)     # who holds it, for the next one's error
    return fd


def _lock_holder(fd: int) -> str:
    """``, PID n (command line)`` of the outbox's owner, from the PID it wrote ("" if
    unknown)."""
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return ""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return f", PID {pid} ({cmd[:120]})" if cmd else f", PID {pid}"


def _ranges(seqs: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for s in seqs:
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def _summarise(bodies: list[dict]) -> dict[str, dict]:
    """min/max/last of every numeric leaf (dotted paths) across ``bodies``, in order."""
    acc: dict[str, FieldSummary] = {}
    for body in bodies:
        for key, value in _numeric_leaves(body, ""):
            cur = acc.get(key)
            if cur is None:
                acc[key] = FieldSummary(value, value, value)
            else:
                acc[key] = FieldSummary(min(cur.min, value), max(cur.max, value), value)
    return {k: {"min": v.min, "max": v.max, "last": v.last} for k, v in acc.items()}


def _numeric_leaves(obj: Any, prefix: str):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numeric_leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, float(obj)
