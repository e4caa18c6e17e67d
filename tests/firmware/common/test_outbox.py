"""The device outbox on real SQLite files: commits, seq, bounds, coalescing, corruption."""
from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from helpers.damage import checkpoint, corrupt
from storeedge.config import config_from_dict
from storeedge.core_events import SimCounter, SimReading
from storeedge.events import Envelope
from storeedge.exc import EventTooLarge, OutboxFull, TelemetryDropped
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
