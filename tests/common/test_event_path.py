"""The whole event path in one process: device -> gateway -> store server, real brokers."""
from __future__ import annotations

import sqlite3

import pytest

from helpers.stack import device_config, event_path, wait_for
from storeedge.firmware.common.core_events import SimCounter
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
