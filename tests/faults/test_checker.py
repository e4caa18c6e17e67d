"""The delivery checker itself: it must fail a run that lost or doubled one event."""
from __future__ import annotations

import sqlite3

from helpers.checker import check_delivery
from storeedge.server.db import SCHEMA, Row, open_store_db

DEVS = {"dev-a": range(1, 201), "dev-b": range(1, 51)}


def _store(path, *, unique: bool = True, skip=(), twice=(), extra=(), wm_delta=0):
    conn = sqlite3.connect(path)
    for stmt in SCHEMA:
        if not unique:     # a store that lost its constraint: can the checker see a double?
            stmt = stmt.replace("UNIQUE (dev, seq))", "no_constraint INTEGER)")
        conn.execute(stmt)
    for dev, seqs in DEVS.items():
        rows = [s for s in seqs if (dev, s) not in skip] + [s for d, s in twice if d == dev]
        rows += [s for d, s in extra if d == dev]
        conn.executemany("INSERT INTO events (dev, seq, kind, store, type, prio, ts, received, "
                         "body) VALUES (?, ?, 'sim', 's1', 'sim.counter', 3, '', 0, '{}')",
                         [(dev, s) for s in rows])
        conn.execute("INSERT INTO devices (dev, kind, store, wm) VALUES (?, 'sim', 's1', ?)",
                     (dev, max(seqs) + wm_delta))
    conn.commit()
    conn.close()
    return path


def test_a_complete_run_passes(tmp_path):
    report = check_delivery(_store(tmp_path / "s.db"), DEVS)
    assert report.ok, str(report)
    assert report.checked == 250


def test_one_deleted_event_fails(tmp_path):
    report = check_delivery(_store(tmp_path / "s.db", skip={("dev-a", 77)}), DEVS)
    assert not report.ok
    assert any("dev-a: 1 committed events missing, e.g. 77" in p for p in report.problems)


def test_one_doubled_event_fails(tmp_path):
    db = _store(tmp_path / "s.db", unique=False, twice={("dev-b", 9)})
    report = check_delivery(db, DEVS)
    assert not report.ok
    assert "dev-b: seq 9 stored 2 times" in report.problems


def test_an_invented_event_fails(tmp_path):
    report = check_delivery(_store(tmp_path / "s.db", extra={("dev-b", 51)}), DEVS)
    assert not report.ok
    assert any("never committed: 51" in p for p in report.problems)


def test_out_of_order_insertion_fails_only_when_order_is_required(tmp_path):
    db = _store(tmp_path / "s.db", skip={("dev-a", 5)}, extra={("dev-a", 5)})
    assert not check_delivery(db, DEVS).ok
    assert check_delivery(db, DEVS, ordered=False).ok


def test_a_lagging_watermark_or_an_open_gap_fails(tmp_path):
    db = _store(tmp_path / "s.db", wm_delta=-1)
    assert any("watermark" in p for p in check_delivery(db, DEVS).problems)
    db2 = _store(tmp_path / "s2.db")
    conn = sqlite3.connect(db2)
    conn.execute("INSERT INTO gaps VALUES ('dev-b', 3, 4, 'missing', 0, NULL)")
    conn.commit()
    conn.close()
    assert any("open gaps" in p for p in check_delivery(db2, DEVS).problems)


def test_unrecoverable_allowance_excuses_only_recorded_placeholders(tmp_path):
    """A range recorded ``unrecoverable`` is excused (as placeholders) with the allowance,
    fails without it, and a real row inside it or any other missing seq still fails."""
    db = tmp_path / "store.db"
    store = open_store_db(f"sqlite:///{db}")
    rows = [Row("dev-u", s, "sim", "s0042", "sim.counter", 2, "2026-01-01T00:00:00Z", 0.0,
                "{}") for s in (1, 2, 3, 7, 8)]
    rows += [Row("dev-u", s, "sim", "s0042", "placeholder", 3, "2026-01-01T00:00:00Z", 0.0,
                 None) for s in (4, 5, 6)]
    store.insert_events(rows)
    store.ensure_device("dev-u", "sim", "s0042")
    store.advance_watermark("dev-u")
    store.record_unrecoverable("dev-u", 4, 6, 0.0)
    store.conn.commit()
    store.close()
    committed = {"dev-u": range(1, 9)}
    assert not check_delivery(db, committed).ok
    report = check_delivery(db, committed, unrecoverable=True)
    assert report.ok, report
    assert (report.checked, report.excused) == (5, 3)
    assert not check_delivery(db, {"dev-u": range(1, 10)}, unrecoverable=True).ok
    conn = sqlite3.connect(db)
    conn.execute("UPDATE gaps SET last_seq=7 WHERE dev='dev-u'")      # a real row inside
    conn.commit()
    conn.close()
    bad = check_delivery(db, committed, unrecoverable=True)
    assert not bad.ok and any("recorded unrecoverable but stored" in p for p in bad.problems)
