"""Freezer readings rolled up per 30 minutes, so 7- and 30-day charts read a few thousand rows.

Only events at or below the device's watermark are rolled up: those are contiguous and final
(a replay can only fill seqs above it), so each event is counted exactly once.  The cursor
moves with a compare-and-swap (``UPDATE ... WHERE seq = old``): two page instances racing on
one database roll a range up once, the loser rolls back.  Readings above the cursor are read
raw and merged by the caller.
"""
from __future__ import annotations

from storeedge.server.web.exc import WriteConflict

ROLLUP_S = 1800


def _expr(db, path: str, number: bool = True) -> str:
    if db.is_pg:
        text = f"(body::json->>'{path}')"
        return f"CAST({text} AS DOUBLE PRECISION)" if number else text
    return f"json_extract(body, '$.{path}')"


def epoch_sql(db) -> str:
    """SQL for the event time ``ts`` as epoch seconds."""
    return "EXTRACT(EPOCH FROM CAST(ts AS TIMESTAMPTZ))" if db.is_pg \
        else "((julianday(ts) - 2440587.5) * 86400.0)"


def grouped_sql(db, width: int, where: str) -> str:
    """Readings grouped per (unit, probe, floor(epoch / width)): min, max, sum of means, n."""
    return (f"SELECT {_expr(db, 'unit', False)}, {_expr(db, 'probe', False)}, "
            f"FLOOR({epoch_sql(db)} / {width}), MIN({_expr(db, 'min_c')}), "
            f"MAX({_expr(db, 'max_c')}), SUM({_expr(db, 'mean_c')}), "
            f"COUNT({_expr(db, 'mean_c')}) FROM events WHERE type='freezer.readings' AND "
            f"placeholder=0 AND {where} GROUP BY 1, 2, 3")


def cursor(ws, dev: str) -> int:
    rows = ws.query("SELECT seq FROM web_rollup_cursor WHERE dev=?", (dev,))
    return rows[0][0] if rows else 0


def refresh(ws, dev: str) -> int:
    """Roll ``dev``'s readings up to its watermark; returns the cursor (last seq rolled up)."""
    db = ws.db
    old = cursor(ws, dev)
    wm_rows = ws.query("SELECT wm FROM devices WHERE dev=?", (dev,))
    wm = wm_rows[0][0] if wm_rows else 0
    if wm <= old:
        return old
    rows = ws.query(grouped_sql(db, ROLLUP_S, "dev=? AND seq > ? AND seq <= ?"), (dev, old, wm))
    least, greatest = ("LEAST", "GREATEST") if db.is_pg else ("MIN", "MAX")
    upsert = ("INSERT INTO web_rollup (dev, unit, probe, b, lo, hi, total, n) VALUES "
              "(?,?,?,?,?,?,?,?) ON CONFLICT (dev, unit, b, probe) DO UPDATE SET "
              f"lo = {least}(web_rollup.lo, excluded.lo), "
              f"hi = {greatest}(web_rollup.hi, excluded.hi), "
              "total = web_rollup.total + excluded.total, n = web_rollup.n + excluded.n")
    stmts = [("INSERT INTO web_rollup_cursor (dev, seq) VALUES (?, 0) ON CONFLICT (dev) "
              "DO NOTHING", (dev,)),
             ("UPDATE web_rollup_cursor SET seq=? WHERE dev=? AND seq=?", (wm, dev, old))]
    stmts += [(upsert, (dev, u, p, int(b), lo, hi, total or 0.0, n)) for u, p, b, lo, hi, total, n
              in rows if u is not None and p is not None]
    try:
        ws.write(stmts, expect_rows={1: 1})
    except WriteConflict:
        pass                          # another instance rolled this range up
    return cursor(ws, dev)
