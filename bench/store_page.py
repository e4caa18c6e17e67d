"""Store page: page times on 30 days of a 50-device store, and device-to-browser alert latency.

Data (written straight into the store database the way the consumer stores it): 10 freezer
cabinets reporting readings every minute, 30 checkout lanes with 2,000 transactions a day in
all (item passes, ~3 % alerts, associates' feedback on most alerts), 5 dock doors and 5 other
devices, over 30 days (``--quick``: 7 days).

Measured, interleaved, medians and p95 over many requests through the real ASGI app:

* ``alerts``: GET /alerts (the 100 newest alerts with their evidence and state), against the
  same page with the page's partial index ignored (``NOT INDEXED``: what a plain events table
  gives);
* ``chart_30d``: the 30-day SVG chart of one cabinet, downsampled in SQL, against the peer a
  user would write first: fetch the range's readings and downsample them in Python.
* ``alert_to_browser``: a device emits ``checkout.escalate`` (real outbox, link, Mosquitto,
  store-server consumer, SQLite, SSE) until a headless chromium shows the card; device clock
  and browser clock are the same machine's.  Peer: the same alerts seen by a page reloading
  /alerts every 2 s.

    python bench/store_page.py [--quick]

Last line: one JSON object with ``alerts_p95_ms``, ``chart_30d_p95_ms``,
``alert_to_browser_p95_ms`` (targets 100, 100, 1000) and the peers' figures.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # tests/helpers

from storeedge.events import format_ts  # noqa: E402
from storeedge.server.db import Row, open_store_db  # noqa: E402

STORE = "s0042"
DAY = 86400


def _rows_freezers(now: float, days: int) -> list[Row]:
    rows, rnd = [], random.Random(1)
    for c in range(10):
        dev, t0, seq = f"fz-{c:02d}", now - days * DAY, 0
        for m in range(days * 1440):
            ts = t0 + m * 60
            temp = -20.0 + 1.5 * ((m % 360) > 330) + rnd.gauss(0, 0.2)   # defrost bumps
            for probe in ("top", "bottom"):
                seq += 1
                body = {"probe": probe, "unit": "cab", "n": 1, "faults": 0,
                        "first_at": format_ts(ts), "min_c": temp, "max_c": temp,
                        "mean_c": temp, "last_c": temp, "offsets_s": [0.0], "temps_c": [temp],
                        "faults_seen": []}
                rows.append(Row(dev, seq, "freezer", STORE, "freezer.readings", 3,
                                format_ts(ts), ts, json.dumps(body)))
    return rows


def _rows_lanes(now: float, days: int) -> tuple[list[Row], list[tuple]]:
    from helpers.webkit import escalation
    rows, actions, rnd = [], [], random.Random(2)
    seqs = {f"lane-{i:02d}": 0 for i in range(30)}
    for k in range(days * 2000):
        ts = now - days * DAY + k * (DAY / 2000)
        dev = f"lane-{k % 30:02d}"

        def add(etype, body, prio=1):
            seqs[dev] += 1
            rows.append(Row(dev, seqs[dev], "checkout", STORE, etype, prio, format_ts(ts), ts,
                            json.dumps(body)))
            return seqs[dev]
        for p in range(6):
            add("checkout.pass", {"txn": f"t{k}", "pass_id": p, "start": ts, "end": ts + 1,
                                  "codes_seen": ["4006381333931"], "outcome": "ok"}, 3)
        add("checkout.transaction", {"txn": f"t{k}", "passes": 6, "scans": 6, "missed": 0,
                                     "switches": 0, "nudges": 0, "escalations": 0,
                                     "blind_s": 0.0, "frames_dropped": 0})
        if rnd.random() < 0.03:
            seq = add("checkout.escalate", escalation(), 0)
            if rnd.random() < 0.8:
                outcome = rnd.choice(["scanned", "no_item", "false_alarm"])
                actions.append((dev, seq, outcome, "", "ali", ts + 30))
    return rows, actions


def build_store(path: Path, days: int) -> float:
    """Write the 30-day store into ``path``; returns the seconds it took."""
    from storeedge.server.web.store import WebStore
    t0, now = time.monotonic(), time.time()
    db = open_store_db(f"sqlite:///{path}")
    WebStore(db)
    lanes, actions = _rows_lanes(now, days)
    txn = db.transactions()
    with db.lock:
        txn.begin()
        for dev, kind in ([(f"fz-{c:02d}", "freezer") for c in range(10)]
                          + [(f"lane-{i:02d}", "checkout") for i in range(30)]
                          + [(f"door-{i}", "dock_door") for i in range(5)]
                          + [(f"misc-{i}", "sim") for i in range(5)]):
            db.ensure_device(dev, kind, STORE)
        for rows in (_rows_freezers(now, days), lanes):
            for i in range(0, len(rows), 50_000):
                db.insert_events(rows[i:i + 50_000])
        db.conn.executemany("INSERT INTO web_alert_actions (dev, seq, outcome, note, by_name, "
                            "ts) VALUES (?,?,?,?,?,?)", actions)
        for dev, in db._exec("SELECT dev FROM devices").fetchall():
            db.advance_watermark(dev)
        txn.commit()
    db.conn.execute("ANALYZE")
    db.close()
    return time.monotonic() - t0


def _client(db_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from storeedge.server.web.app import create_app
    from helpers.webkit import page_context
    ctx = page_context(f"sqlite:///{db_path}")
    client = TestClient(create_app(ctx))
    client.post("/login", data={"name": "mara", "password": "correct horse battery"})
    return ctx, client


def _naive_chart(ctx, seconds: int) -> int:
    """The peer: fetch every reading of the range and downsample in Python (240 buckets)."""
    from storeedge.events import parse_ts
    from storeedge.server.web.queries import since_ts
    rows = ctx.store.query("SELECT ts, body FROM events WHERE dev='fz-03' AND "
                           "type='freezer.readings' AND ts >= ?", (since_ts(seconds),))
    width, buckets = seconds / 240, {}
    for ts, body in rows:
        doc = json.loads(body)
        key = (doc["probe"], int(parse_ts(ts) // width))
        lo, hi, total, n = buckets.get(key, (1e9, -1e9, 0.0, 0))
        buckets[key] = (min(lo, doc["min_c"]), max(hi, doc["max_c"]), total + doc["mean_c"],
                        n + 1)
    return len(buckets)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def page_times(db_path: Path, reps: int) -> dict:
    """Interleaved: ours vs peer for the alert list and the 30-day chart (ms)."""
    import storeedge.server.web.queries as q
    ctx, client = _client(db_path)
    times = {"alerts": [], "alerts_peer": [], "chart": [], "chart_peer": []}

    def alerts():
        assert client.get("/alerts").status_code == 200

    def chart():
        resp = client.get("/freezers/chart/fz-03/cab.svg?range=30d")
        assert resp.status_code == 200 and "<polyline" in resp.text

    for _ in range(reps):
        times["alerts"].append(_timed(alerts))
        q.ALERTS_FROM = "events NOT INDEXED"          # the page without its own indexes
        times["alerts_peer"].append(_timed(alerts))
        q.ALERTS_FROM = "events"
        times["chart"].append(_timed(chart))
        times["chart_peer"].append(_timed(lambda: _naive_chart(ctx, 30 * DAY)))
    client.close()
    ctx.store.db.close()
    return times


def _live_stack(work: Path):
    """Insecure broker (bench only), store server with the page, a lane device."""
    from storeedge.brokerproc import Mosquitto
    from storeedge.config import config_from_dict
    from storeedge.firmware.common.service import DeviceService
    from storeedge.settings import DeviceConfig
    from storeedge.server.config import StoreServerConfig
    from storeedge.server.consumer import StoreServer
    from storeedge.server.web.serve import WebServer, build_context

    broker = Mosquitto(work / "broker", insecure=True)
    broker.start()
    link = {"url": broker.url, "backoff_min_s": 0.1, "backoff_max_s": 1.0}
    cfg = config_from_dict({"server": {"id": "store-1", "db": f"sqlite:///{work}/store.db"},
                            "link": link, "security": {"insecure": True},
                            "web": {"enabled": True, "port": 0}, "log": {"level": "warning"}},
                           StoreServerConfig)
    server = StoreServer(cfg)
    server.start()
    web = WebServer(build_context(cfg, server.link), "127.0.0.1", 0)
    web.start()
    lane = DeviceService(config_from_dict({
        "device": {"id": "lane-bench", "kind": "checkout", "store": STORE}, "link": link,
        "outbox": {"path": str(work / "lane-outbox.db")}, "security": {"insecure": True},
        "log": {"level": "warning"}}, DeviceConfig), app="checkout")
    lane.start()
    return broker, server, web, lane


_OBSERVE = """
window.__seen = {};
new MutationObserver(function (muts) {
  muts.forEach(function (m) { m.addedNodes.forEach(function (n) {
    if (n.id && n.id.indexOf('alert-') === 0) { window.__seen[n.id] = Date.now(); } }); });
}).observe(document.getElementById('alerts'), {childList: true});
"""


class RefreshPeer:
    """The peer: a page that reloads /alerts every ``period_s`` (what a user would set up
    without live updates); records when each alert card first appears (epoch ms)."""

    def __init__(self, url: str, cookie: str, period_s: float = 2.0):
        import threading
        self.url, self.cookie, self.period_s = url, cookie, period_s
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import re
        import urllib.request
        while not self._stop.wait(self.period_s):
            req = urllib.request.Request(self.url + "/alerts",
                                         headers={"Cookie": f"se_session={self.cookie}"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                html = resp.read().decode()
            now = time.time() * 1000
            for key in re.findall(r'id="(alert-lane-bench-\d+)"', html):
                self.seen.setdefault(key, now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(15)


def _wait_seen(chrome, peer: RefreshPeer, key: str) -> tuple[float, float]:
    """(browser ms, peer ms) when ``key`` appeared (epoch ms)."""
    deadline, seen = time.monotonic() + 10, None
    while (seen is None or key not in peer.seen) and time.monotonic() < deadline:
        seen = seen or chrome.driver.execute_script(f"return window.__seen['{key}'] || null;")
        time.sleep(0.01)
    if seen is None or key not in peer.seen:
        raise RuntimeError(f"alert {key} never reached the browser (or the refreshing peer)")
    return seen, peer.seen[key]


def alert_to_browser(work: Path, n: int) -> tuple[list[float], list[float]]:
    """ms from the device's emit() to the card: live page in a headless chromium, and the
    2-s refreshing peer on the same alerts; ``n`` alerts."""
    from browser import Browser
    from storeedge.firmware.checkout.events import Escalate, Evidence

    broker, server, web, lane = _live_stack(work)
    chrome, peer = Browser(), None
    chrome.base = web.url
    live, peers = [], []
    try:
        chrome.login("mara", "correct horse battery")
        chrome.open("/alerts")
        chrome.driver.execute_script(_OBSERVE)
        peer = RefreshPeer(web.url, chrome.cookie("se_session"))
        for _ in range(n):
            time.sleep(random.uniform(0.2, 0.6))          # de-phase from the poll period
            t_emit = time.time() * 1000
            env = lane.emit(Escalate("t-bench", "missed_scan", 2, 1, 0.2, Evidence(
                None, "4006381333931", "EAN-13", None, time.time() - 2, time.time() - 1)))
            seen, peer_seen = _wait_seen(chrome, peer, f"alert-lane-bench-{env.seq}")
            live.append(seen - t_emit)
            peers.append(peer_seen - t_emit)
    finally:
        if peer is not None:
            peer.close()
        web.close()                 # ends the live stream before the browser goes away
        chrome.close()
        lane.close()
        server.close()
        broker.stop()
    return live, peers


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="7 days of data, fewer repeats")
    args = parser.parse_args(argv)
    days, reps, alerts_n = (7, 15, 10) if args.quick else (30, 60, 40)
    work = Path(tempfile.mkdtemp(prefix="se-bench-page-"))
    try:
        built = build_store(work / "store.db", days)
        print(f"built {days} days of a 50-device store in {built:.1f} s", flush=True)
        t = page_times(work / "store.db", reps)
        latencies, refresh = alert_to_browser(work, alerts_n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"days": days, "quick": args.quick,
              "alerts_p50_ms": round(statistics.median(t["alerts"]), 1),
              "alerts_p95_ms": round(p95(t["alerts"]), 1),
              "alerts_peer_p95_ms": round(p95(t["alerts_peer"]), 1),
              "chart_30d_p50_ms": round(statistics.median(t["chart"]), 1),
              "chart_30d_p95_ms": round(p95(t["chart"]), 1),
              "chart_30d_peer_p95_ms": round(p95(t["chart_peer"]), 1),
              "chart_peer_ratio": round(statistics.median(t["chart_peer"])
                                        / statistics.median(t["chart"]), 2),
              "alerts_peer_ratio": round(statistics.median(t["alerts_peer"])
                                         / statistics.median(t["alerts"]), 2),
              "alert_to_browser_p50_ms": round(statistics.median(latencies), 1),
              "alert_to_browser_p95_ms": round(p95(latencies), 1),
              "alert_refresh_2s_peer_p95_ms": round(p95(refresh), 1),
              "alerts_measured": len(latencies)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
