"""Network fault scenarios: a whole store in namespaces (TLS + ACL), faults on real links.

Each scenario ends with the same checker (:mod:`helpers.checker`): every event a device
committed is in the store exactly once, in per-device seq order, the watermark covers all
of it and no gap is open. The default suite runs a short form of each; ``-m slow`` (``make
test-faults``) runs the full forms. They need root, ``ip netns``, tc and iptables, and skip
with the reason where those are missing.

The event path has no native kernel in it, so these run in the native pass only (the
``STOREEDGE_PURE=1`` pass would repeat the same processes).
"""
from __future__ import annotations

import os
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
FULL_TIMEOUT_S = 1800     # a full form's long drains outlast the default 300 s test timeout


def FULL(test):  # noqa: N802 -- used like a mark
    """A full form: runs with the slow set (``make test-faults``), with time to drain."""
    return pytest.mark.slow(pytest.mark.timeout(FULL_TIMEOUT_S)(test))


@pytest.fixture
def store(pki, tmp_path, request):
    rig = NetRig(tag=f"{abs(hash(request.node.name)) % 1000}")
    net = NetStore.build(rig, pki, tmp_path, **getattr(request, "param", {}))
    try:
        yield net
    finally:
        net.close()


def _finish(net: NetStore, timeout: float, *, ordered: bool = True) -> None:
    assert net.wait_devices_done(timeout), "devices did not commit their events\n" + net.logs()
    assert net.wait_delivered(timeout), (f"not delivered: {net.watermarks()} vs "
                                         f"{ {k: v.stop - 1 for k, v in net.committed().items()} }"
                                         f"\n{net.logs()}")
    report = net.check(ordered=ordered)
    assert report.ok, f"{report}\n{net.logs()}"


def _loss_and_delay(net: NetStore, devices: int, count: int, rate: float) -> None:
    for i in range(devices):
        dev = net.add_device(f"dev-{i}", delay_ms=300, jitter_ms=100)
        dev.link.loss(0.20)
    net.start()
    for name in net.devices:
        net.start_device(name, rate=rate, count=count)
    _finish(net, 240)


def test_loss_20pct_and_300ms_jitter_on_every_device_link(store):
    _loss_and_delay(store, devices=3, count=120, rate=20)


@FULL
def test_loss_20pct_and_300ms_jitter_full(store):
    _loss_and_delay(store, devices=10, count=3000, rate=20)


def _partition_then_drain(net: NetStore, devices: int, count: int, rate: float) -> None:
    for i in range(devices):
        net.add_device(f"dev-{i}")
    net.start()
    net.uplink.partition()
    for name in net.devices:
        net.start_device(name, rate=rate, count=count)
    assert net.wait_devices_done(count / rate + 120), net.logs()
    assert sum(net.watermarks().values()) == 0, "the store got events through a partition"
    net.uplink.heal()
    _finish(net, 300)


def test_uplink_partition_backlog_then_full_drain(store):
    _partition_then_drain(store, devices=4, count=400, rate=100)


@FULL
def test_uplink_partition_100k_backlog_full(store):
    _partition_then_drain(store, devices=20, count=5000, rate=250)


def _flap_and_slow(net: NetStore, seconds: float) -> None:
    flappy, slow = net.add_device("dev-flap"), net.add_device("dev-slow")
    slow.link.rate(64)
    net.start()
    net.start_device("dev-flap", rate=30, count=int(30 * seconds))
    net.start_device("dev-slow", rate=30, count=int(30 * seconds))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        flappy.link.partition()
        time.sleep(1.5)
        flappy.link.heal()
        time.sleep(1.5)
    _finish(net, 240)


def test_flapping_link_and_a_64kbit_device(store):
    _flap_and_slow(store, seconds=9)


@FULL
def test_flapping_link_and_a_64kbit_device_full(store):
    _flap_and_slow(store, seconds=90)


def _gateway_paused(net: NetStore, pause_s: float) -> None:
    net.add_device("dev-0")
    net.start()
    net.start_device("dev-0", rate=50, count=int(50 * (pause_s + 6)))
    time.sleep(2)
    net.pause("gateway")          # longer than 1.5 x keepalive (5 s): the broker drops it
    time.sleep(pause_s)
    net.resume("gateway")
    _finish(net, 240)


def test_gateway_paused_longer_than_keepalive(store):
    _gateway_paused(store, pause_s=9)


@FULL
def test_gateway_paused_longer_than_keepalive_full(store):
    _gateway_paused(store, pause_s=60)


def _kills_during_partition(net: NetStore, target: str, kills: int) -> None:
    net.add_device("dev-0")
    net.add_device("dev-1")
    net.start()
    net.uplink.partition()
    for name in net.devices:
        net.start_device(name, rate=200, count=200 * (kills * 2 + 2))
    for _ in range(kills):
        time.sleep(2)
        if target == "gateway":
            net.kill("gateway")
            net.start_gateway()
        else:
            net.restart_broker("in_store")
    net.uplink.heal()
    # a killed gateway's broker session re-delivers in-flight messages after newer ones
    _finish(net, 300)


@pytest.mark.parametrize("target", ["gateway", "in_store_broker"])
def test_kills_while_the_uplink_is_partitioned(store, target):
    _kills_during_partition(store, "gateway" if target == "gateway" else "broker", kills=3)


@FULL
@pytest.mark.parametrize("target", ["gateway", "in_store_broker"])
def test_kills_while_the_uplink_is_partitioned_full(store, target):
    _kills_during_partition(store, "gateway" if target == "gateway" else "broker", kills=15)


def test_clock_skew_of_ten_minutes_on_two_devices(store):
    for name in ("dev-ahead", "dev-behind", "dev-true"):
        store.add_device(name)
    store.start()
    store.start_device("dev-ahead", rate=40, count=200, faketime="+600s")
    store.start_device("dev-behind", rate=40, count=200, faketime="-600s")
    store.start_device("dev-true", rate=40, count=200)
    _finish(store, 180)


def _mesh(net: NetStore, fail_s: float) -> None:
    net.add_device("dev-near")
    far = net.add_device("dev-far", via="dev-near")
    net.start()
    net.start_device("dev-near", rate=40, count=int(40 * (fail_s + 8)))
    net.start_device("dev-far", rate=40, count=int(40 * (fail_s + 8)))
    time.sleep(3)
    far.link.partition()          # the hop between the two devices fails ...
    time.sleep(fail_s)
    far.link.heal()               # ... and comes back
    _finish(net, 240)


def test_mesh_two_hops_with_a_hop_that_fails_and_returns(store):
    _mesh(store, fail_s=6)


@FULL
def test_mesh_two_hops_full(store):
    _mesh(store, fail_s=60)
