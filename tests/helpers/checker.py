"""The delivery checker every fault scenario ends with (Jepsen-style: prove what was committed).

Given the store database and, per device, the seqs its outbox committed, it checks:

* every committed event is in the store exactly once (a real row, not a placeholder);
* the store holds nothing for a device beyond what it committed (nothing invented);
* per device, events were inserted in seq order (optional: a killed store server's broker
  re-delivers its in-flight messages after newer ones, see README "Per-device order");
* the store's watermark for each device is its highest committed seq (contiguous);
* no gap is left open.

With ``unrecoverable=True`` (a scenario that destroys the gateway's database) seqs the store
recorded as an ``unrecoverable`` gap are excused -- they must be placeholders, never real
rows, and the excused range is reported in ``excused`` -- everything else stays strict.

It returns every problem it finds (not only the first) so a failing run says what went wrong.
"""
from __future__ import annotations

import sqlite3
from typing import Iterable, NamedTuple


class DeliveryReport(NamedTuple):
    """The checker's verdict: ``ok`` with the number of events checked, or the problems."""

    ok: bool
    problems: list[str]
    checked: int
    excused: int = 0                  # committed seqs excused as recorded unrecoverable

    def __str__(self) -> str:
        if self.ok:
            return f"delivery ok: {self.checked} events exactly once, in order, no open gap"
        return "delivery NOT ok:\n  " + "\n  ".join(self.problems[:30])


def outbox_committed(outbox_path) -> range:
    """Seqs a device outbox committed: 1..last_seq (seqs are never skipped without salvage)."""
    conn = sqlite3.connect(f"file:{outbox_path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
    finally:
        conn.close()
    return range(1, (row[0] if row else 0) + 1)


def check_delivery(store_db, committed: dict[str, Iterable[int]], *,
                   ordered: bool = True, unrecoverable: bool = False) -> DeliveryReport:
    """Check a store database (SQLite file path) against what each device committed.

    Args:
        store_db: path of the store's SQLite database.
        committed: device id -> the seqs its outbox committed.
        ordered: also require per-device insertion (rowid) order to follow seq order.
        unrecoverable: excuse seqs inside the store's ``unrecoverable`` gaps.
    """
    conn = sqlite3.connect(f"file:{store_db}?mode=ro", uri=True)
    try:
        problems: list[str] = []
        checked = excused = 0
        for dev, seqs in committed.items():
            want = sorted(set(seqs))
            top = want[-1] if want else 0
            gone: set[int] = set()
            if unrecoverable:
                gone = _unrecoverable(conn, dev)
                problems += _check_excused(conn, dev, gone)
                excused += sum(1 for s in want if s in gone)
                want = [s for s in want if s not in gone]
            checked += len(want)
            problems += _check_device(conn, dev, want, ordered, top, gone)
        return DeliveryReport(not problems, problems, checked, excused)
    finally:
        conn.close()


def _unrecoverable(conn, dev: str) -> set[int]:
    """Seqs of ``dev`` inside the store's ``unrecoverable`` gaps."""
    return {s for a, b in conn.execute("SELECT first_seq, last_seq FROM gaps WHERE dev=? AND "
                                       "reason='unrecoverable'", (dev,))
            for s in range(a, b + 1)}


def _check_excused(conn, dev: str, gone: set[int]) -> list[str]:
    """Excused seqs must be placeholders: a real row there means the gap was not real."""
    real = sorted(s for (s,) in conn.execute(
        "SELECT seq FROM events WHERE dev=? AND placeholder=0", (dev,)) if s in gone)
    return [f"{dev}: seqs recorded unrecoverable but stored: {_ranges(real)}"] if real else []


def _check_device(conn, dev: str, want: list[int], ordered: bool,
                  top: int | None = None, excused: frozenset | set = frozenset()) -> list[str]:
    rows = conn.execute("SELECT seq, placeholder FROM events WHERE dev=? ORDER BY rowid",
                        (dev,)).fetchall()
    if top is None:
        top = want[-1] if want else 0
    seen: dict[int, int] = {}
    for seq, _placeholder in rows:
        seen[seq] = seen.get(seq, 0) + 1
    problems = [f"{dev}: seq {s} stored {n} times" for s, n in sorted(seen.items()) if n > 1]
    wanted = set(want)
    missing = [s for s in want if s not in seen]
    if missing:
        problems.append(f"{dev}: {len(missing)} committed events missing, e.g. {_ranges(missing)}")
    extra = sorted(s for s in seen if s not in wanted and s not in excused)
    if extra:
        problems.append(f"{dev}: {len(extra)} stored events it never committed: {_ranges(extra)}")
    holders = [s for s, placeholder in rows if placeholder and s in wanted]
    if holders:
        problems.append(f"{dev}: {len(holders)} committed events stored only as placeholders: "
                        f"{_ranges(holders)}")
    if ordered:
        order = [s for s, _p in rows if s not in excused]   # excused: recorded late
        bad = [b for a, b in zip(order, order[1:]) if b < a]
        if bad:
            problems.append(f"{dev}: inserted out of seq order {len(bad)} times, e.g. at {bad[:5]}")
    problems += _check_marks(conn, dev, top, bool(excused))
    return problems


def _check_marks(conn, dev: str, top: int, excused: bool = False) -> list[str]:
    problems = []
    row = conn.execute("SELECT wm FROM devices WHERE dev=?", (dev,)).fetchone()
    wm = row[0] if row else 0
    if wm != top:
        problems.append(f"{dev}: store watermark {wm}, expected {top}")
    open_gaps = conn.execute("SELECT first_seq, last_seq, reason FROM gaps WHERE dev=? AND "
                             "resolved IS NULL", (dev,)).fetchall()
    if excused:                      # recorded as gone for good: not open, never filled
        open_gaps = [g for g in open_gaps if g[2] != "unrecoverable"]
    if open_gaps:
        problems.append(f"{dev}: open gaps {open_gaps[:5]}")
    return problems


def _ranges(seqs: list[int], limit: int = 8) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` (the first ``limit`` runs)."""
    runs: list[list[int]] = []
    for s in seqs:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    text = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs[:limit])
    return text + (" ..." if len(runs) > limit else "")
