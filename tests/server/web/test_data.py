"""What the pages compute, on real SQLite and PostgreSQL: chart buckets (raw and rolled up),
HACCP export, lane figures, devices."""
from __future__ import annotations

import csv
import io
import json
import time

import psycopg
import pytest

from helpers.webkit import escalation, page_context, put_events

from storeedge.events import parse_ts
from storeedge.server.web import figures, freezers, queries, rollup


def reading(probe: str, temp: float) -> dict:
    return {"probe": probe, "unit": "ice1", "n": 1, "faults": 0, "first_at": "x",
            "min_c": temp - 0.5, "max_c": temp + 0.5, "mean_c": temp, "last_c": temp,
            "offsets_s": [0.0], "temps_c": [temp], "faults_seen": []}


def python_buckets(events: list[tuple[float, dict]], width: int, t0: float) -> dict:
    """The reference: group (time, body) readings in Python."""
    out: dict = {}
    for ts, body in events:
        if ts < t0 - width:
            continue
        key = (body["probe"], int(ts // width))
        lo, hi, total, n = out.get(key, (1e9, -1e9, 0.0, 0))
        out[key] = (min(lo, body["min_c"]), max(hi, body["max_c"]), total + body["mean_c"], n + 1)
    return {k: (lo, hi, round(total / n, 6)) for k, (lo, hi, total, n) in out.items()}


def chart_as_dict(buckets, width: int) -> dict:
    return {(b.probe, int(b.t // width)): (b.lo, b.hi, round(b.mean, 6)) for b in buckets}


@pytest.fixture(params=["sqlite", "postgresql"])
def ctx(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        pg = request.getfixturevalue("postgres")
        name = f"web_{int(time.time() * 1e6)}"
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = pg.dsn.rsplit("/", 1)[0] + f"/{name}"
    c = page_context(url)
    yield c
    c.store.db.close()


def test_30_day_chart_from_the_rollup_equals_grouping_every_reading(ctx):
    db, now = ctx.store.db, time.time()
    start = now - 30 * 86400
    events, step = [], 1800.0                       # two probes, every 30 min, 30 days
    for k in range(int(30 * 86400 / step)):
        for probe in ("top", "bottom"):
            events.append((start + k * step, reading(probe, -20 + (k % 17) * 0.3)))
    put_events(db, "fz-1", "freezer", [("freezer.readings", b) for _t, b in events[:2000]],
               ts=start, step_s=step / 2)
    cab = freezers.Cabinet("fz-1", "ice1")
    first = freezers.chart_buckets(ctx.store, cab, 30 * 86400, now)
    assert rollup.cursor(ctx.store, "fz-1") > 0                       # rolled up ...
    put_events(db, "fz-1", "freezer", [("freezer.readings", b) for _t, b in events[2000:]],
               ts=start + 1000 * step, step_s=step / 2)                 # ... then more arrive
    width = 30 * 86400 // freezers.BUCKETS
    width -= width % rollup.ROLLUP_S
    got = chart_as_dict(freezers.chart_buckets(ctx.store, cab, 30 * 86400, now), width)
    stored = [(parse_ts(ts), json.loads(b)) for ts, b in ctx.store.query(
        "SELECT ts, body FROM events WHERE dev='fz-1'")]
    assert got == python_buckets(stored, width, now - 30 * 86400)
    assert len(first) < len(got) and len(got) <= 2 * (freezers.BUCKETS + 1)
    again = freezers.chart_buckets(ctx.store, cab, 30 * 86400, now)   # nothing counted twice
    assert chart_as_dict(again, width) == got


def test_24h_chart_and_svg_mark_alarms_and_limits(ctx):
    now = time.time()
    put_events(ctx.store.db, "fz-1", "freezer",
               [("freezer.readings", reading("top", -19 + i * 0.1)) for i in range(60)]
               + [("freezer.alarm", {"alarm_id": "a1", "action": "raised", "kind": "temperature",
                                     "probe": "top", "unit": "ice1", "condition": "H",
                                     "severity": "warning", "escalation": 0, "notify": "store",
                                     "raised_at": "x", "detail": "warm", "value_c": -14.0,
                                     "limit_c": -15.0})], ts=now - 3600, step_s=60)
    svg = freezers._chart_svg(ctx.store, "fz-1", "ice1", "24h")
    assert svg.count("<polyline") == 1 and "limit -15 °C" in svg and "▲ H top" in svg


def test_haccp_export_keeps_the_corrective_action_and_neutralises_formulas(ctx):
    rec = {"record_id": "ice1-20261205-1800", "unit": "ice1", "kind": "frozen", "result": "fail",
           "scheduled_at": "2026-12-05T18:00:00.000000Z", "limit_c": -18.0,
           "detail": "-14.70 > -18 degC", "value_c": -14.7, "action": None, "initials": None}
    put_events(ctx.store.db, "fz-1", "freezer", [
        ("freezer.haccp", rec),
        ("freezer.haccp", {**rec, "action": "=HYPERLINK(\"x\") moved stock", "initials": "JD"})])
    rows = list(csv.reader(io.StringIO(freezers.haccp_csv(freezers.haccp_rows(ctx.store)))))
    assert rows[0][0] == "record_id" and len(rows) == 2
    assert rows[1][9] == "'=HYPERLINK(\"x\") moved stock" and rows[1][10] == "JD"
    assert freezers.haccp_pdf(freezers.haccp_rows(ctx.store)).startswith(b"%PDF")


def test_lane_figures_count_alerts_per_100_transactions_and_false_share(ctx):
    txn = {"txn": "t", "passes": 3, "scans": 3, "missed": 0, "switches": 0, "nudges": 0,
           "escalations": 0, "blind_s": 0.0, "frames_dropped": 0}
    seqs = put_events(ctx.store.db, "lane-1", "checkout",
                      [("checkout.transaction", txn)] * 50
                      + [("checkout.escalate", escalation())] * 4)
    ctx.store.write([("INSERT INTO web_alert_actions (dev, seq, outcome, note, by_name, ts) "
                      "VALUES (?,?,?,?,?,?)", ("lane-1", s, o, "", "ali", time.time()))
                     for s, o in zip(seqs[50:53], ("false_alarm", "scanned", "false_alarm"))])
    (fig,) = figures.lane_figures(ctx.store, 7, "day")
    assert (fig.transactions, fig.alerts, fig.feedback, fig.false_alarms) == (50, 4, 3, 2)
    assert fig.alerts_per_100 == 8.0 and abs(fig.false_share - 2 / 3) < 1e-9
    (week,) = figures.lane_figures(ctx.store, 7, "week")
    assert "-W" in week.period and week.alerts == 4
    lines = figures.figures_csv([fig]).splitlines()
    assert lines[1].endswith(",50,4,8.00,3,2,0.667")


def test_devices_show_backlog_gaps_open_alarms_and_offline(ctx):
    db = ctx.store.db
    put_events(db, "fz-1", "freezer", [("device.started", {"app": "freezer", "version": "0.3.1",
                                                           "pending": 0, "last_seq": 0})],
               ts=time.time() - 900)
    with db.lock:
        txn = db.transactions()
        txn.begin()
        db.record_gap("fz-1", 5, 9, "hole", time.time())
        txn.commit()
    db.query("SELECT 1")
    (dev,) = queries.devices(ctx.store, now=time.time() + 3600)
    assert (dev.version, dev.open_gaps, dev.online) == ("0.3.1", 1, False)
    derived = {a.type for a in queries.derived_alerts(ctx.store, now=time.time() + 3600)}
    assert derived == {"gap", "offline"}


def test_login_resolve_and_audit_through_the_page_on_both_databases(ctx):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient
    from storeedge.server.web.app import create_app
    from helpers.webkit import PASSWORD, csrf_of, login

    (seq,) = put_events(ctx.store.db, "lane-1", "checkout", [("checkout.escalate",
                                                              escalation())])
    with TestClient(create_app(ctx), follow_redirects=True) as client:
        assert login(client, "ali", "wrong").status_code == 401
        login(client, "ali", PASSWORD)
        html = client.get("/alerts").text
        resp = client.post("/alerts/resolve", data={"csrf": csrf_of(html), "alert":
                                                    f"lane-1:{seq}", "outcome": "false_alarm",
                                                    "note": "it's a bag o' chips"})
        assert "false alarm by ali: it&#39;s a bag o&#39; chips" in resp.text
    assert [a for _t, _n, a, _g, _d in ctx.store.audit_log()][:3] == \
        ["alert.resolve", "login", "login.failed"]


def test_door_log_shows_the_audit_chain_status_and_catches_an_altered_event(ctx):
    from dataclasses import asdict

    from storeedge.audit import genesis, make_link
    from storeedge.server.web.door import _door_log

    events, prev, t = [], genesis("door-1"), time.time()
    for i, (etype, body) in enumerate([
            ("door.boot", {"relay": "locked", "fail_safe": False, "replayed": 0}),
            ("door.state", {"state": "unlocked", "prev": "locked", "cause": "grant",
                            "lockout": False}),
            ("door.state", {"state": "locked", "prev": "unlocked", "cause": "timeout",
                            "lockout": False})]):
        link = make_link("door-1", i, prev, etype, t + i, body)
        events.append((etype, {**body, "chain": asdict(link)}))
        prev = link.h
    seqs = put_events(ctx.store.db, "door-1", "dock_door", events)
    log = _door_log(ctx, "door-1")
    assert log["ok"] and log["chain"] == "chain ok: 3 events, links 0..2"
    altered = {**events[1][1], "cause": "forced"}
    ctx.store.write([("UPDATE events SET body=? WHERE dev='door-1' AND seq=?",
                      (json.dumps(altered), seqs[1]))])
    log = _door_log(ctx, "door-1")
    assert not log["ok"] and log["chain"].startswith("chain NOT ok: altered [1]")
