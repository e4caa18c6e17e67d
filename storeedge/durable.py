"""Durable SQLite building blocks shared by the device outbox, the gateway and the store server.

* :func:`open_db` opens a file in WAL mode with ``synchronous=FULL`` and checks it;
  a corrupt file raises :class:`CorruptDatabase` (callers move it aside, never wipe it).
* :func:`move_aside` renames a database and its ``-wal``/``-shm`` companions for salvage.
* :func:`salvage_rows` reads what can still be read from a corrupt table, range by range.
* :class:`GroupCommitter` runs one writer thread: callers submit items, the thread applies
  every item that is waiting in one transaction, commits (fsync), and only then resolves each
  item's :class:`Ticket` -- the "acknowledge only after commit" rule in one place.
"""
from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from typing import Any, Callable, Sequence

from storeedge.atomic import fsync_dir
from storeedge.exc import OutboxClosed, OutboxError, StoreedgeError

log = logging.getLogger(__name__)


class CorruptDatabase(StoreedgeError, sqlite3.DatabaseError):
    """The database file failed its integrity check or could not be read."""


def open_db(path: str, *, check: bool = True) -> sqlite3.Connection:
    """Open ``path`` for durable writes: WAL, ``synchronous=FULL``, integrity checked.

    Raises:
        CorruptDatabase: the file is not a database or fails ``PRAGMA quick_check``.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise CorruptDatabase(f"{path}: cannot switch to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        if check:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise CorruptDatabase(f"{path}: integrity check failed: {verdict}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, CorruptDatabase):
            raise
        raise CorruptDatabase(f"{path}: {exc}") from exc
    return conn


def move_aside(path: str, stamp: float | None = None) -> str:
    """Rename ``path`` (and its -wal/-shm files) to ``path.corrupt-<unix time>``; returns it."""
    stamp = time.time() if stamp is None else stamp
    target = f"{path}.corrupt-{int(stamp)}"
    n = 1
    while os.path.exists(target):
        target = f"{path}.corrupt-{int(stamp)}-{n}"
        n += 1
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, target + suffix)
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return target


def salvage_rows(path: str, table: str, columns: str, key: str, *, hi: int | None = None,
                 step: int = 256) -> tuple[list[tuple], int]:
    """Read every readable row of ``table`` from a (possibly corrupt) database file.

    Rows are read in ``key`` ranges of ``step``; a range that fails is re-read row by row, so
    one bad page costs only the rows on it.  Returns ``(rows, unreadable_ranges)``.
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return [], 1
    rows: list[tuple] = []
    bad = 0
    try:
        top = hi if hi is not None else _max_key(conn, table, key)
        if top is None:
            return [], 1
        for lo in range(1, top + 1, step):
            got, failed = _read_range(conn, table, columns, key, lo, min(top, lo + step - 1))
            rows.extend(got)
            bad += failed
    finally:
        conn.close()
    return rows, bad


def _max_key(conn: sqlite3.Connection, table: str, key: str) -> int | None:
    try:
        return conn.execute(f"SELECT MAX({key}) FROM {table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        return None


def _read_range(conn, table, columns, key, lo, hi) -> tuple[list[tuple], int]:
    sql = f"SELECT {columns} FROM {table} WHERE {key} BETWEEN ? AND ? ORDER BY {key}"
    try:
        return conn.execute(sql, (lo, hi)).fetchall(), 0
    except sqlite3.DatabaseError:
        pass
    rows, bad = [], 0
    for k in range(lo, hi + 1):
        try:
            rows.extend(conn.execute(sql, (k, k)).fetchall())
        except sqlite3.DatabaseError:
            bad += 1
    return rows, bad


# ----------------------------------------------------------------------------- group commit


class Ticket:
    """The promise of one submitted item: resolved after its transaction commits.

    Light on purpose (one per event on the hot path): the wake-up event is only created when
    somebody actually waits.
    """

    __slots__ = ("item", "_done", "_event", "_result", "_error", "_callback")
    _guard = threading.Lock()

    def __init__(self, item: Any, callback: Callable[["Ticket"], None] | None = None):
        self.item = item
        self._done = False
        self._event: threading.Event | None = None
        self._result: Any = None
        self._error: BaseException | None = None
        self._callback = callback

    def _resolve(self, result: Any, error: BaseException | None) -> None:
        self._result, self._error = result, error
        with Ticket._guard:
            self._done = True
            event = self._event
        if event is not None:
            event.set()
        if self._callback is not None:
            try:
                self._callback(self)
            except Exception:  # a callback must never kill the committer
                log.exception("group-commit callback failed")

    @property
    def error(self) -> BaseException | None:
        """The exception the item failed with, or None (valid once resolved)."""
        return self._error

    @property
    def result(self) -> Any:
        """The applied result (valid once resolved without error)."""
        return self._result

    def wait(self, timeout: float | None = None) -> Any:
        """Block until committed; return the result or raise the item's error."""
        with Ticket._guard:
            if not self._done and self._event is None:
                self._event = threading.Event()
            event = None if self._done else self._event
        if event is not None and not event.wait(timeout):
            raise TimeoutError("the store did not commit in time")
        if self._error is not None:
            raise self._error
        return self._result


_STOP = object()
ApplyFn = Callable[[Any, Sequence[Any]], list]


class SqliteTransactions:
    """Transaction control for a sqlite3 connection opened with ``isolation_level=None``."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


class GroupCommitter:
    """One writer thread committing everything that waits in one transaction.

    ``apply(conn, items)`` runs inside ``BEGIN IMMEDIATE``; it returns one entry per item, a
    result or an exception instance (that item fails, the others commit).  If the transaction
    itself fails, every item fails with :class:`OutboxError` and ``on_rollback`` runs so the
    owner can reload in-memory state.
    """

    def __init__(self, conn: Any, apply: ApplyFn, *, name: str = "committer",
                 gather_s: float = 0.0, max_batch: int = 5000,
                 on_rollback: Callable[[], None] | None = None,
                 after_commit: Callable[[list], None] | None = None,
                 transactions: Any = None, lock: threading.RLock | None = None):
        self.conn = conn
        self.txn = transactions or SqliteTransactions(conn)
        self.lock = lock or threading.RLock()   # held while writing; readers of `conn` too
        self._apply, self._gather, self._max = apply, gather_s, max_batch
        self._on_rollback, self._after_commit = on_rollback, after_commit
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._stale = False                  # a rollback's state reload has not succeeded yet
        self.died: BaseException | None = None   # why the writer thread stopped (a bug)
        self.commits = 0
        self.items = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """The writer thread is running (False once closed, or if it stopped on a bug)."""
        return self._thread.is_alive()

    def submit(self, item: Any, callback: Callable[[Ticket], None] | None = None) -> Ticket:
        """Queue ``item``; the ticket resolves once it is committed (or failed)."""
        ticket = Ticket(item, callback)
        if self._closed:
            ticket._resolve(None, self._closed_error("the store is closed"))
            return ticket
        self._q.put(ticket)
        if self.died is not None:      # the writer stopped meanwhile: nobody else will answer
            self._fail_leftovers()
        return ticket

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._q.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        batch: list[Ticket] = []
        try:
            while True:
                batch, stop = self._gather_batch()
                if batch:
                    self._commit(batch)
                if stop:
                    break
        except BaseException as exc:   # a bug: fail every waiter now rather than never
            self._died(exc, batch)
            raise
        self._fail_leftovers()

    def _died(self, exc: BaseException, batch: list[Ticket]) -> None:
        log.critical("the writer thread %s stopped: %r; every pending and later item fails",
                     self._thread.name, exc)
        self.died, self._closed = exc, True
        error = self._closed_error("")
        for ticket in batch:
            if not ticket._done:
                ticket._resolve(None, error)
        self._fail_leftovers()

    def _closed_error(self, default: str) -> OutboxError:
        if self.died is not None:
            return OutboxError(f"the store's writer thread stopped ({self.died!r}): "
                               "nothing more can be committed; restart the process")
        return OutboxClosed(default)

    def _gather_batch(self) -> tuple[list[Ticket], bool]:
        """The first waiting item, then whatever else arrives within ``gather_s``.

        Never ``SimpleQueue.get(timeout=...)``: on CPython before 3.13, when the deadline
        passes inside that call (the thread preempted at the wrong instant, likely on a busy
        machine) the remaining timeout turns negative, which means "wait forever" -- the
        writer then sleeps until the *next* item arrives while the writer of this batch
        waits for it (issue 17's 60 s stall). Sleep, then take what is there.
        """
        first = self._q.get()
        if first is _STOP:
            return [], True
        batch = [first]
        if self._gather > 0:
            time.sleep(self._gather)
        while len(batch) < self._max:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, batch: list[Ticket]) -> None:
        with self.lock:
            try:
                self._reload_if_stale()
            except Exception as exc:   # state unknown: committing now could reuse or skip keys
                self._fail(batch, OutboxError(f"not committed: the state could not be reloaded "
                                              f"after a failed commit: {exc}"))
                return
            try:
                self.txn.begin()
                outcomes = self._apply(self.conn, [t.item for t in batch])
                if len(outcomes) != len(batch):   # every ticket gets exactly one answer
                    raise OutboxError(f"apply returned {len(outcomes)} outcomes for "
                                      f"{len(batch)} items")
                self.txn.commit()
            except Exception as exc:  # sqlite3.Error, disk full, a bug in apply
                self._rollback(exc)
                error = exc if isinstance(exc, OutboxError) else OutboxError(f"commit failed: {exc}")
                self._fail(batch, error)
                return
        self.commits += 1
        self.items += len(batch)
        if self._after_commit is not None:
            try:
                self._after_commit(outcomes)
            except Exception:   # the commit stands: its tickets must still be answered
                log.exception("after-commit hook of %s failed", self._thread.name)
        for ticket, outcome in zip(batch, outcomes):
            if isinstance(outcome, BaseException):
                ticket._resolve(None, outcome)
            else:
                ticket._resolve(outcome, None)

    @staticmethod
    def _fail(batch: list[Ticket], error: BaseException) -> None:
        for ticket in batch:
            ticket._resolve(None, error)

    def _rollback(self, exc: BaseException) -> None:
        """Roll back and reload the owner's state; a failing reload is retried before the
        next commit (never raised here: the batch's tickets must still be answered)."""
        log.error("transaction failed, rolled back: %s", exc)
        self._stale = self._on_rollback is not None
        try:
            self.txn.rollback()
            self._reload_if_stale()
        except Exception as again:
            log.error("rolling back or reloading state failed too (%s): retried before the "
                      "next commit", again)

    def _reload_if_stale(self) -> None:
        if self._stale:
            self._on_rollback()
            self._stale = False

    def _fail_leftovers(self) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item._resolve(None, self._closed_error("the store was closed before this "
                                                       "commit"))


def read_all(conn: sqlite3.Connection, lock: threading.RLock, sql: str,
             params: Sequence = ()) -> list[tuple]:
    """Run a read query under the writer's lock (the connection is shared)."""
    with lock:
        return conn.execute(sql, params).fetchall()
