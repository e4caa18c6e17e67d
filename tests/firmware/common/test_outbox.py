"""The device outbox on real SQLite files: commits, seq, bounds, coalescing, corruption."""
from __future__ import annotations

import logging
import os
import sqlite3
import threading

import pytest

from helpers.damage import checkpoint, corrupt
from storeedge.config import config_from_dict
from storeedge.core_events import SimCounter, SimReading
from storeedge.events import Envelope
from storeedge import durable
from storeedge.exc import EventTooLarge, OutboxError, OutboxFull, TelemetryDropped
from storeedge.firmware.common import outbox as outbox_mod
from storeedge.firmware.common.outbox import Identity, Outbox
from storeedge.settings import OutboxSection

IDENT = Identity("dev-o", "sim", "s0042")


def make(tmp_path, **kw) -> Outbox:
    cfg = config_from_dict({"path": str(tmp_path / "o.db"), **kw}, OutboxSection)
    return Outbox(cfg, IDENT)


def test_seq_strictly_increasing_and_persisted(tmp_path):
    box = make(tmp_path)
    seqs = [box.append(SimCounter(n=i)).seq for i in range(50)]
    assert seqs == list(range(1, 51))
    box.close()
    box = make(tmp_path)
    assert box.append(SimCounter(n=99)).seq == 51
    box.close()


def test_concurrent_writers_group_commit(tmp_path):
    box = make(tmp_path)
    results: list[int] = []
    lock = threading.Lock()

    def writer(k):
        for i in range(100):
            env = box.append(SimCounter(n=k * 1000 + i))
            with lock:
                results.append(env.seq)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(1, 801))
    assert box._committer.commits < 800, "writers must share commits"
    box.close()
    conn = sqlite3.connect(tmp_path / "o.db")
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 800
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_envelope_is_valid_json_with_identity(tmp_path):
    box = make(tmp_path)
    env = box.append(SimCounter(n=7), ts=1_795_000_000.25)
    row = box.pending_after(0, 10)[0]
    back = Envelope.from_json(row.payload)
    assert back == env
    assert (back.dev, back.kind, back.store, back.type, back.prio) == \
        ("dev-o", "sim", "s0042", "sim.counter", 2)
    assert back.ts == "2026-11-18T11:06:40.250000Z"
    box.close()


def test_acked_events_leave_pending_and_old_history_is_pruned(tmp_path):
    box = make(tmp_path, keep_acked=5)
    for i in range(20):
        box.append(SimCounter(n=i))
    assert box.mark_acked(15) == 15
    assert [e.seq for e in box.pending_after(0, 100)] == list(range(16, 21))
    assert box.stats().rows == 5 + 5
    box.close()


def test_full_outbox_coalesces_telemetry_and_keeps_priority_events(tmp_path):
    box = make(tmp_path, max_bytes=64 * 1024, max_event_bytes=4096, reserve_fraction=0.2)
    important = [box.append(SimCounter(n=i)).seq for i in range(20)]
    tickets = [box.submit(SimReading(value=float(i % 50), n=i)) for i in range(3000)]
    for ticket in tickets:
        try:
            ticket.wait(30)
        except TelemetryDropped:
            pass
    stats = box.stats()
    assert stats.coalesced > 0
    assert stats.bytes <= box.soft_limit
    # every priority 0-2 event is still there, untouched
    kept = {e.seq for e in box.pending_after(0, 10**6)}
    assert set(important) <= kept
    # the summaries account for every telemetry seq that was replaced
    covered = set()
    for env in box.recent(10**6, "telemetry.coalesced"):
        for lo, hi in env.body["covers"]:
            covered.update(range(lo, hi + 1))
        assert env.body["fields"]["value"]["min"] >= 0
        assert env.body["fields"]["value"]["max"] <= 49
    readings = {e.seq for e in box.pending_after(0, 10**6) if e.type == "sim.reading"}
    assert covered.isdisjoint(readings)
    assert covered | readings | kept >= set(range(21, 3021)) - _dropped(box)
    box.close()


def _dropped(box):
    # seqs were never assigned to refused events, so nothing to subtract
    return set()


def test_priority_events_get_a_clear_error_when_even_they_cannot_fit(tmp_path):
    box = make(tmp_path, max_bytes=64 * 1024, max_event_bytes=16 * 1024, reserve_fraction=0.1)
    with pytest.raises(OutboxFull) as info:
        for i in range(10_000):
            box.append(SimCounter(n=i, pad="x" * 1000))
    assert "outbox full" in str(info.value)
    stored = box.stats()
    assert stored.refused >= 1
    assert stored.bytes <= box.hard_limit
    # nothing was silently dropped: every seq handed out is still stored
    assert len(box.pending_after(0, 10**6)) == stored.last_seq
    box.close()


def test_oversized_event_refused(tmp_path):
    box = make(tmp_path, max_event_bytes=1024)
    with pytest.raises(EventTooLarge):
        box.append(SimCounter(n=1, pad="y" * 5000))
    assert box.append(SimCounter(n=2)).seq == 1, "a refused event takes no seq"
    box.close()


def test_corrupt_outbox_is_moved_aside_salvaged_and_reported(tmp_path):
    box = make(tmp_path)
    for ticket in [box.submit(SimCounter(n=i, pad="z" * 40)) for i in range(2000)]:
        ticket.wait(30)
    box.close()
    path = str(tmp_path / "o.db")
    checkpoint(path)
    corrupt(path)
    box = make(tmp_path)          # must not raise
    aside = [p for p in os.listdir(tmp_path) if ".corrupt-" in p and not p.endswith(("-wal", "-shm"))]
    assert len(aside) == 1, "the bad file is kept for salvage"
    report = box.recent(1, "outbox.salvaged")[0]
    assert report.prio == 1
    assert 0 < report.body["recovered"] < 2000
    lost = sum(hi - lo + 1 for lo, hi in report.body["lost"])
    assert report.body["recovered"] + lost == report.seq - 1
    # the app keeps running on the fresh file, seq keeps increasing
    assert box.append(SimCounter(n=1)).seq == report.seq + 1
    box.close()


def test_garbage_file_is_not_wiped(tmp_path):
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not a database at all" * 100)
    box = make(tmp_path)
    aside = [p for p in os.listdir(tmp_path) if ".corrupt-" in p]
    assert aside and (tmp_path / aside[0]).read_bytes().startswith(b"this is not")
    assert box.recent(1, "outbox.salvaged")[0].body["recovered"] == 0
    box.close()


def test_one_process_owns_an_outbox(tmp_path):
    """A second owner would hand out the same seqs: it is refused with a clear error."""
    import subprocess
    import sys

    box = make(tmp_path)
    code = ("import sys; from storeedge.firmware.common.outbox import Outbox, Identity;"
            "from storeedge.settings import OutboxSection;"
            f"Outbox(OutboxSection(path={str(tmp_path / 'o.db')!r}), Identity('d','sim','s'))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "in use by another process" in res.stderr
    box.close()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------- the writer always answers
# (issue 17: a device's append waited 60 s, "the store did not commit in time", and the device
# exited. The cause was the timed queue wait below; the tests after it close the other ways a
# writer could leave a batch unanswered: a failing commit whose state reload also failed, or a
# failing after-commit hook, killed the writer thread before it answered.)


class _QueueSpy:
    """The writer's queue, recording how the writer waits on it."""

    def __init__(self, q):
        self.q, self.gets, self.timed = q, 0, []

    def put(self, item):
        self.q.put(item)

    def get(self, block=True, timeout=None):
        self.gets += 1
        if timeout is not None:
            self.timed.append(timeout)
        return self.q.get(block, timeout)

    def get_nowait(self):
        self.gets += 1
        return self.q.get_nowait()


def test_the_writer_never_waits_on_its_queue_with_a_timeout(tmp_path):
    """The stall itself: CPython < 3.13's SimpleQueue.get(timeout=t) waits *forever* when t
    runs out inside the call (its recomputed timeout turns negative), so a writer gathering
    a group commit with a 2 ms timed get could sleep until the next item while this item's
    writer waited for it: 'the store did not commit in time'. Reproduced with the device
    outbox under load (a stack dump showed the writer in that get, the batch in hand)."""
    box = make(tmp_path, commit_interval_ms=2.0)
    spy = _QueueSpy(box._committer._q)
    box._committer._q = spy            # the writer is blocked in the real queue's get()
    seqs = [box.append(SimCounter(n=i), timeout=10).seq for i in range(20)]
    box.close()
    assert seqs == list(range(1, 21))
    assert spy.gets >= 20 and spy.timed == [], "a timed SimpleQueue.get can hang for ever"


class _DiskFailsOnce:
    """The outbox's transactions, with COMMIT failing once as a dying disk does (EIO)."""

    def __init__(self, real):
        self.real, self.armed = real, False

    def begin(self):
        self.real.begin()

    def commit(self):
        if self.armed:
            self.armed = False
            raise sqlite3.OperationalError("disk I/O error")
        self.real.commit()

    def rollback(self):
        self.real.rollback()


def _reload_fails(box, times: int) -> list:
    """Make the writer's state reload (after a rollback) fail ``times`` times; returns the
    list of failures still to come."""
    real = box._committer._on_rollback
    left = [sqlite3.OperationalError("disk I/O error")] * times

    def reload():
        if left:
            raise left.pop()
        real()
    box._committer._on_rollback = reload
    return left


def test_a_failed_commit_whose_reload_fails_is_answered_and_seqs_stay_contiguous(tmp_path):
    box = make(tmp_path)
    assert box.append(SimCounter(n=0)).seq == 1
    disk = _DiskFailsOnce(box._committer.txn)
    box._committer.txn = disk
    left = _reload_fails(box, times=2)
    disk.armed = True
    with pytest.raises(OutboxError, match="commit failed"):
        box.append(SimCounter(n=1), timeout=10)
    # the reload is retried before the next commit; while it fails nothing is committed
    # (the in-memory seq is wrong until it succeeds: committing could leave a hole)
    with pytest.raises(OutboxError, match="could not be reloaded"):
        box.append(SimCounter(n=2), timeout=10)
    assert not left and box._committer.alive
    assert box.append(SimCounter(n=3), timeout=10).seq == 2     # no hole at 2
    box.close()
    conn = sqlite3.connect(tmp_path / "o.db")
    rows = conn.execute("SELECT seq, payload FROM events ORDER BY seq").fetchall()
    assert [(s, Envelope.from_json(p).body["n"]) for s, p in rows] == [(1, 0), (2, 3)]


def test_a_failing_after_commit_hook_does_not_stop_the_writer(tmp_path):
    conn = durable.open_db(str(tmp_path / "g.db"))
    conn.execute("CREATE TABLE t (v INTEGER)")

    def apply(c, items):
        c.executemany("INSERT INTO t VALUES (?)", [(i,) for i in items])
        return list(items)

    def hook(_outcomes):
        raise RuntimeError("a bug in the hook")

    writer = durable.GroupCommitter(conn, apply, after_commit=hook)
    assert writer.submit(1).wait(10) == 1          # committed: its ticket is answered
    assert writer.submit(2).wait(10) == 2
    writer.close()
    assert conn.execute("SELECT v FROM t ORDER BY v").fetchall() == [(1,), (2,)]


def test_a_writer_that_stops_on_a_bug_fails_waiters_at_once(tmp_path):
    conn = durable.open_db(str(tmp_path / "g.db"))

    class Bug(BaseException):
        pass

    def apply(_c, _items):
        raise Bug("not an Exception: escapes the commit's handler")

    died: list = []
    hook, threading.excepthook = threading.excepthook, died.append   # the thread re-raises
    try:
        writer = durable.GroupCommitter(conn, apply)
        with pytest.raises(OutboxError, match="writer thread stopped"):
            writer.submit(1).wait(10)
        writer._thread.join(10)
    finally:
        threading.excepthook = hook
    assert not writer.alive and isinstance(died[0].exc_value, Bug)
    with pytest.raises(OutboxError, match="writer thread stopped"):
        writer.submit(2).wait(10)                  # answered at once, not after a timeout


class _Reported(logging.Handler):
    """Sets ``seen`` when the outbox reports a slow commit."""

    def __init__(self):
        super().__init__()
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record):
        if "has waited" in record.getMessage():
            self.messages.append(record.getMessage())
            self.seen.set()


def test_a_slow_commit_is_reported_with_stacks_and_append_still_returns(tmp_path, monkeypatch):
    monkeypatch.setattr(outbox_mod, "SLOW_COMMIT_S", 0.05)
    box = make(tmp_path)
    report = _Reported()
    outbox_mod.log.addHandler(report)
    real_commit = box._committer.txn.commit

    def slow_commit():              # the disk stalls until the stall has been reported
        report.seen.wait(20)
        real_commit()
    monkeypatch.setattr(box._committer.txn, "commit", slow_commit)
    try:
        env = box.append(SimCounter(n=0))     # no timeout: the answer, however late
    finally:
        outbox_mod.log.removeHandler(report)
    assert env.seq == 1
    assert len(report.messages) == 1
    assert "--- thread outbox-dev-o" in report.messages[0] and "slow_commit" in report.messages[0]
    box.close()
