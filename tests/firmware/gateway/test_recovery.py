"""Gateway disk loss and self-reporting, against real Mosquitto brokers (TLS + ACL) and SQLite.

The gateway's database is deleted while a device still holds part of what it delivered
(``outbox.keep_acked``) and the store lacks it: the new gateway takes the store's watermark,
the device re-sends what it holds, and what is gone for good is recorded as an
``unrecoverable`` gap from a sealed ``gateway.gap_unrecoverable`` event.
"""
from __future__ import annotations

import glob
import json
import os

import pytest

from helpers.checker import check_delivery
from helpers.events import Publisher, envelope, stored
from helpers.seals import sealed_json
from helpers.stack import device_config, gateway_config, store_config, wait_for
from storeedge.core_events import SimCounter
from storeedge.firmware.common.service import DeviceService
from storeedge.firmware.gateway.relay import Relay
from storeedge.server.consumer import StoreServer
from storeedge.server.db import open_store_db

RELAY = {"recovery_wait_s": 0.5, "status_every_s": 60.0}


@pytest.fixture
def brokers(broker_factory):
    return broker_factory("down"), broker_factory("up")


def _query(db: str, sql: str, params=()) -> list[tuple]:
    store = open_store_db(db)
    try:
        return store.query(sql, params)
    finally:
        store.close()


def _wm(db: str, dev: str) -> int:
    rows = _query(db, "SELECT wm FROM devices WHERE dev=?", (dev,))
    return rows[0][0] if rows else 0


def _gateway_events(db: str, etype: str) -> list[dict]:
    return [json.loads(b) for (b,) in _query(
        db, "SELECT body FROM events WHERE dev='gw-1' AND type=? ORDER BY seq", (etype,))]


def test_lost_gateway_database_recovers_and_records_unrecoverable_gap(brokers, tmp_path):
    down, up = brokers
    db = f"sqlite:///{tmp_path}/store.db"
    gw_cfg = gateway_config(down.url, up.url, tmp_path, **RELAY)
    store = StoreServer(store_config(up.url, db))
    relay = Relay(gw_cfg)
    svc = DeviceService(device_config("dev-r", down.url, tmp_path, keep_acked=5))
    for part in (store, relay, svc):
        part.start()
    try:
        delivered = [svc.emit(SimCounter(n=i)).seq for i in range(30)][-1]
        assert wait_for(lambda: _wm(db, "dev-r") == delivered, 20)
        up.stop()                              # the uplink is down: only the gateway has ...
        last = [svc.emit(SimCounter(n=i)).seq for i in range(20)][-1]
        assert svc.wait_acked(last, 20)        # ... these, and the device prunes most of them
        assert wait_for(lambda: svc.held_from() > delivered + 1, 10), "nothing pruned"
        held_from = svc.held_from()
        relay.close()
        for path in glob.glob(str(tmp_path / "gateway.db*")):
            os.remove(path)                    # the SD card died
        up.start()
        assert store.link.wait_connected(30)   # it re-publishes its retained watermarks
        relay = Relay(gw_cfg)
        relay.start()
        last = [svc.emit(SimCounter(n=i)).seq for i in range(10)][-1]
        assert wait_for(lambda: _wm(db, "dev-r") == last, 30), _wm(db, "dev-r")
        gone = list(range(delivered + 1, held_from))   # held by the dead gateway only
        assert stored(db, "dev-r") == [s for s in range(1, last + 1) if s not in gone]
        gaps = _query(db, "SELECT first_seq, last_seq, reason, resolved FROM gaps "
                          "WHERE dev='dev-r'")
        assert (delivered + 1, held_from - 1, "unrecoverable", None) in gaps
        assert all(g[3] is not None for g in gaps if g[2] == "hole"), gaps
        reports = _gateway_events(db, "gateway.gap_unrecoverable")
        assert [(r["dev"], r["first"], r["last"]) for r in reports] == [
            ("dev-r", delivered + 1, held_from - 1)]
        report = check_delivery(tmp_path / "store.db", {"dev-r": range(1, last + 1)},
                                unrecoverable=True, ordered=False)
        assert report.ok and report.excused == len(gone), report
        assert not check_delivery(tmp_path / "store.db", {"dev-r": range(1, last + 1)}).ok
    finally:
        svc.close()
        relay.close()
        store.close()


def test_gateway_reports_rejections_backlog_and_links(brokers, tmp_path):
    """``gateway.status`` events reach the store: rejection counters, per-device backlog
    (events the store has not confirmed) and link state."""
    down, up = brokers
    db = f"sqlite:///{tmp_path}/store.db"
    relay = Relay(gateway_config(down.url, up.url, tmp_path, recovery_wait_s=0.2,
                                 status_every_s=0.5))
    svc = DeviceService(device_config("dev-s", down.url, tmp_path))
    pub = Publisher(down.url)
    store = None
    try:
        relay.start()
        svc.start()
        last = [svc.emit(SimCounter(n=i)).seq for i in range(10)][-1]
        assert svc.wait_acked(last, 20)
        assert relay.down.wait_connected(10)
        pub.send(envelope("dev-s", 1, 1).topic, b"{not json")           # counted rejection
        assert wait_for(lambda: sum(relay.store.rejects.values()) >= 1, 10)
        # no store server yet: everything is backlog, reported as such once it is back
        assert wait_for(lambda: relay.status_body().backlog.get("dev-s") == last, 10)
        store = StoreServer(store_config(up.url, db))
        store.start()
        assert wait_for(lambda: _wm(db, "dev-s") == last, 20)

        def seen() -> list[dict]:
            return _gateway_events(db, "gateway.status")
        assert wait_for(lambda: any(b["backlog"].get("dev-s") == last for b in seen()), 10)
        assert wait_for(lambda: any(b["backlog"].get("dev-s") == 0 for b in seen()), 10)
        statuses = seen()
        assert all(b["up"] and b["down"] for b in statuses)
        assert all(sum(b["rejects"].values()) >= 1 for b in statuses[-2:]), statuses[-1]
        assert "gw-1" not in statuses[-1]["backlog"], "the gateway's own stream is not backlog"
        own = stored(db, "gw-1")                 # the gateway's own stream: 1.. contiguous
        assert own == list(range(1, len(own) + 1)) and len(own) >= len(statuses)
    finally:
        pub.close()
        svc.close()
        relay.close()
        if store is not None:
            store.close()
