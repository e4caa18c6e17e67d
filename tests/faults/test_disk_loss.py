"""A gateway's SD card dies mid-run (issue 17): a whole store in namespaces (TLS + ACL).

The uplink is partitioned so the gateway alone holds what the devices sent; the devices prune
what it acknowledged beyond ``outbox.keep_acked``; then the gateway is SIGKILLed, its
``gateway.db*`` deleted and it starts empty.  The checker must pass for everything the store
can still have, with exactly the pruned range recorded as ``unrecoverable`` (from sealed
``gateway.gap_unrecoverable`` events), no gap left open and nothing stored twice.
Native pass only, like the other network scenarios.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from helpers.netrig import NetRig, unavailable
from helpers.netstore import NetStore

WHY_NOT = unavailable()
pytestmark = [
    pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or ""),
    pytest.mark.skipif(os.environ.get("STOREEDGE_PURE") == "1",
                       reason="no native code on the event path: the network scenarios run "
                              "in the native pass only"),
]


@pytest.fixture
def store(pki, tmp_path, request):
    rig = NetRig(tag=f"{abs(hash(request.node.name)) % 1000}")
    # forward_window: what the gateway sent before dying is still in flight (TCP, relay)
    # and reaches the store after the heal; keep it small so something is really lost
    net = NetStore.build(rig, pki, tmp_path, relay={"status_every_s": 2.0,
                                                    "forward_window": 50})
    try:
        yield net
    finally:
        net.close()


def _rows(net: NetStore, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{net.store_db()}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _disk_loss(net: NetStore, devices: int, rate: float, seconds: float) -> None:
    for i in range(devices):
        net.add_device(f"dev-{i}", outbox={"keep_acked": 40})
    net.start()
    for name in net.devices:
        net.start_device(name, rate=rate, count=int(rate * seconds))
    deadline = time.monotonic() + 60        # part of it reaches the store ...
    while not all(net.watermarks().get(n, 0) > rate for n in net.devices):
        assert time.monotonic() < deadline, f"nothing delivered\n{net.logs()}"
        time.sleep(0.2)
    net.uplink.partition()
    time.sleep(seconds / 4)                 # ... the gateway alone holds this part
    net.lose_gateway_disk()
    time.sleep(1)
    net.uplink.heal()
    assert net.wait_devices_done(240), "devices did not commit their events\n" + net.logs()
    assert net.wait_delivered(240), f"not delivered: {net.watermarks()}\n{net.logs()}"
    report = net.check(unrecoverable=True)
    assert report.ok, f"{report}\n{net.logs()}"
    gaps = _rows(net, "SELECT dev, first_seq, last_seq, reason, resolved FROM gaps")
    lost = [g for g in gaps if g[3] == "unrecoverable"]
    assert lost and report.excused == sum(g[2] - g[1] + 1 for g in lost), gaps
    assert all(g[4] is not None for g in gaps if g[3] == "hole"), gaps
    reported = [json.loads(b) for (b,) in _rows(
        net, "SELECT body FROM events WHERE dev='gw-1' AND type='gateway.gap_unrecoverable'")]
    covered = {(r["dev"], s) for r in reported for s in range(r["first"], r["last"] + 1)}
    assert all((g[0], s) in covered for g in lost for s in range(g[1], g[2] + 1)), reported
    assert not net.check().ok, "without the allowance the lost range must fail the checker"


def test_gateway_disk_lost_mid_run(store):
    _disk_loss(store, devices=2, rate=100, seconds=8)


@pytest.mark.slow
def test_gateway_disk_lost_mid_run_full(store):
    _disk_loss(store, devices=10, rate=200, seconds=40)
