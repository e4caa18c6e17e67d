"""Events other programs hand the gateway (``own-spool/`` beside its database): the image's
update client reports a failed A/B update of the gateway this way, since the gateway has no
outbox.  Real brokers (TLS + ACL), a real gateway store and store server."""
from __future__ import annotations

import json

import pytest

from helpers.stack import gateway_config, store_config, wait_for
from storeedge.firmware.gateway.own import spool_dir, spool_event
from storeedge.firmware.gateway.relay import Relay
from storeedge.server.consumer import StoreServer
from storeedge.server.db import open_store_db

FAILED = {"slot": "B", "running": "A", "version": "v2", "reason": "app never healthy",
          "installed_at": "2026-12-06T10:00:00Z"}


@pytest.fixture
def brokers(broker_factory):
    return broker_factory("down"), broker_factory("up")


def _gateway_events(db: str) -> list[tuple[str, dict]]:
    store = open_store_db(db)
    try:
        rows = store.query("SELECT type, body FROM events WHERE dev='gw-1' ORDER BY seq")
    finally:
        store.close()
    return [(t, json.loads(b)) for t, b in rows]


def test_spool_event_refuses_what_the_gateway_could_not_send(tmp_path):
    spool = tmp_path / "own-spool"
    with pytest.raises(ValueError, match="unknown event type"):
        spool_event(spool, "device.no_such_thing", {})
    with pytest.raises(ValueError):
        spool_event(spool, "device.update_failed", {**FAILED, "slot": 2})
    assert not spool.exists() or not list(spool.iterdir()), "nothing half-written"


def test_spooled_events_leave_under_the_gateway_identity_and_bad_ones_are_kept_aside(
        brokers, tmp_path):
    down, up = brokers
    cfg = gateway_config(down.url, up.url, tmp_path, recovery_wait_s=0.2, status_every_s=60.0)
    spool = spool_dir(cfg.relay.db_path)
    path = spool_event(spool, "device.update_failed", FAILED)
    (spool / "0-garbage.json").write_text("{not json")
    (spool / "1-unknown.json").write_text(json.dumps({"type": "x.y", "body": {}}))
    db = f"sqlite:///{tmp_path}/store.db"
    relay, store = Relay(cfg), StoreServer(store_config(up.url, db))
    try:
        store.start()
        relay.start()
        assert wait_for(lambda: any(t == "device.update_failed"
                                    for t, _ in _gateway_events(db)), 20)
        assert wait_for(lambda: not path.exists(), 10), "deleted once committed"
        failed = [b for t, b in _gateway_events(db) if t == "device.update_failed"]
        assert failed == [FAILED], "exactly once, with its body"
        assert sorted(p.name for p in spool.iterdir()) == [
            "0-garbage.json.rejected", "1-unknown.json.rejected"]
        assert relay.own.spool_rejected == 2
    finally:
        relay.close()
        store.close()
