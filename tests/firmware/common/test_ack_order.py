"""A device never acts on a superseded watermark (issue 17).

The gateway stamps each watermark with its database's epoch, its run's generation and a
counter; a stale retained or replayed one (a broker restoring an old retained value) must not
make the device re-send its history, while a new gateway database's lower mark still must.
"""
from __future__ import annotations

import json

import pytest

from helpers.events import Publisher
from helpers.stack import STORE, device_config, wait_for
from storeedge import topics
from storeedge.core_events import SimCounter
from storeedge.firmware.common.service import AckOrder, DeviceService

DEV = "dev-ack"


def ack(seq: int, epoch: str | None = None, gen: int = 1, n: int = 1) -> dict:
    return {"seq": seq} if epoch is None else {"seq": seq, "epoch": epoch, "gen": gen, "n": n}


def test_ack_order_rules():
    order = AckOrder()
    assert order.fresh(ack(10, "e1", 1, 5))
    assert not order.fresh(ack(3, "e1", 1, 4))          # older counter
    assert not order.fresh(ack(10, "e1", 1, 5))         # the same one again
    assert order.fresh(ack(12, "e1", 1, 6))
    assert order.fresh(ack(12, "e1", 2, 1))             # the gateway restarted: next run
    assert not order.fresh(ack(12, "e1", 1, 99))        # a previous run's, however counted
    assert order.fresh(ack(2, "e2", 1, 1))              # a new database: its lower mark counts
    assert not order.fresh(ack(12, "e1", 3, 1))         # the replaced database's, any run
    assert order.fresh(ack(1))                          # unstamped (older gateway): as before
    assert order.fresh({"seq": 1, "epoch": "e3", "gen": True, "n": 1})   # bad stamp: unstamped


@pytest.fixture
def down(broker_factory):
    return broker_factory("down", insecure=True)


def test_stale_watermark_never_triggers_a_history_resend(down, tmp_path):
    svc = DeviceService(device_config(DEV, down.url, tmp_path, keep_acked=100))
    gateway = Publisher(down.url)
    topic = topics.ack(STORE, "sim", DEV)
    send = lambda doc: gateway.send(topic, json.dumps(doc).encode(), retain=True)  # noqa: E731
    try:
        svc.start()
        last = [svc.emit(SimCounter(n=i)) for i in range(10)][-1].seq
        assert wait_for(lambda: svc.link.connected.is_set(), 20)
        send(ack(last, "e1", 1, 5))
        assert svc.wait_acked(last, 20)
        before = svc.resends                            # blind re-sends before the first ack
        send(ack(3, "e1", 1, 4))                        # e.g. restored by a broker restart
        assert wait_for(lambda: svc.stale_acks == 1, 20)
        assert svc._lowered is None and svc.resends == before
        send(ack(3, "e2", 1, 1))                        # the gateway lost its database
        assert wait_for(lambda: svc.resends >= before + last - 3, 20)
        send(ack(last, "e1", 1, 99))                    # the lost database's, replayed
        assert wait_for(lambda: svc.stale_acks == 2, 20)
        assert svc._lowered == 3
    finally:
        gateway.close()
        svc.close()
