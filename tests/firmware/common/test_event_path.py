"""The whole event path in one process: device -> gateway -> store server, real brokers."""
from __future__ import annotations

import sqlite3

import pytest

from helpers.stack import device_config, event_path, wait_for
from storeedge.core_events import SimCounter
from storeedge.firmware.common.service import DeviceService


def stored_seqs(db_path, dev):
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute(
            "SELECT seq FROM events WHERE dev=? AND placeholder=0 ORDER BY seq", (dev,))]
    finally:
        conn.close()


@pytest.fixture
def stack(broker_factory, tmp_path):
    with event_path(broker_factory, tmp_path) as (down, up, relay, store):
        yield down, up, relay, store, tmp_path


def test_events_arrive_once_in_order(stack):
    down, _up, relay, store, tmp = stack
    svc = DeviceService(device_config("dev-a", down.url, tmp))
    svc.start()
    envs = [svc.emit(SimCounter(n=i)) for i in range(300)]
    assert svc.wait_acked(envs[-1].seq, 20)
    assert wait_for(lambda: len(stored_seqs(tmp / "store.db", "dev-a")) == envs[-1].seq, 20)
    assert stored_seqs(tmp / "store.db", "dev-a") == list(range(1, envs[-1].seq + 1))
    svc.close()


def test_salvaged_outbox_reaches_the_store_with_its_losses_recorded(broker_factory, tmp_path):
    """A device whose outbox was corrupt: what was recovered is delivered, what is gone is
    recorded as lost at the store, and the watermark moves past it (nothing waits forever)."""
    from helpers.damage import checkpoint, corrupt
    from storeedge.firmware.common.outbox import Identity, Outbox

    cfg = device_config("dev-s", "mqtt://127.0.0.1:1", tmp_path)
    box = Outbox(cfg.outbox, Identity("dev-s", "sim", "s0042"))
    for ticket in [box.submit(SimCounter(n=i, pad="z" * 40)) for i in range(2000)]:
        ticket.wait(30)
    box.close()
    checkpoint(cfg.outbox.path)
    corrupt(cfg.outbox.path)
    with event_path(broker_factory, tmp_path) as (down, _up, _relay, store):
        svc = DeviceService(device_config("dev-s", down.url, tmp_path))
        svc.start()
        try:
            report = svc.recent_events(1, "outbox.salvaged")[0]
            last = svc.outbox.last_seq
            assert wait_for(lambda: store.db.watermark("dev-s") >= last, 60)
            lost = sum(hi - lo + 1 for lo, hi in report.body["lost"])
            gaps = store.db.query("SELECT first_seq, last_seq FROM gaps WHERE dev='dev-s' "
                                  "AND reason='lost'")
            assert sum(b - a + 1 for a, b in gaps) == lost
            assert len(stored_seqs(tmp_path / "store.db", "dev-s")) == \
                report.body["recovered"] + 2       # + outbox.salvaged + device.started
        finally:
            svc.close()
