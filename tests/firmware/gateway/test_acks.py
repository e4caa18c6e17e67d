"""The gateway's watermarks to devices carry its database's epoch, its run and a counter."""
from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers.events import envelope
from helpers.stack import STORE, gateway_config, wait_for
from storeedge import topics
from storeedge.brokerproc import subscribe_acked
from storeedge.firmware.gateway.relay import Relay
from storeedge.firmware.gateway.store import GatewayStore, Incoming

DEV = "dev-w"


def test_epoch_is_kept_with_the_database_and_generation_counts_runs(tmp_path):
    path = str(tmp_path / "gateway.db")
    first = GatewayStore(path)
    first.close()
    again = GatewayStore(path)
    again.close()
    assert again.epoch.epoch == first.epoch.epoch and again.epoch.gen == first.epoch.gen + 1
    for leftover in tmp_path.glob("gateway.db*"):
        leftover.unlink()                               # the SD card is lost
    fresh = GatewayStore(path)
    fresh.close()
    assert fresh.epoch.epoch != first.epoch.epoch and fresh.epoch.gen == 1


@pytest.fixture
def brokers(broker_factory):
    return broker_factory("down", insecure=True), broker_factory("up", insecure=True)


def _submit(store: GatewayStore, seqs: range) -> None:
    for seq in seqs:
        env = envelope(DEV, seq, seq)
        store.submit(Incoming(env, env.to_json())).wait(10)


def test_each_watermark_is_stamped_and_counted(brokers, tmp_path):
    down, up = brokers
    relay = Relay(gateway_config(down.url, up.url, tmp_path, status_every_s=3600.0))
    seen: list[dict] = []
    lock = threading.Lock()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c, _u, msg):
        with lock:
            seen.append(json.loads(msg.payload))

    watcher.on_message = on_message
    watcher.connect("127.0.0.1", int(str(down.url).rsplit(":", 1)[1]))
    watcher.loop_start()
    try:
        subscribe_acked(watcher, topics.ack(STORE, "sim", DEV))
        relay.start()
        assert relay.down.wait_connected(20)
        for last in (3, 6, 9):
            _submit(relay.store, range(last - 2, last + 1))
            assert wait_for(lambda: any(d["seq"] == last for d in list(seen)), 20), seen
        with lock:
            docs = list(seen)
        stamp = relay.store.epoch
        assert all(d["epoch"] == stamp.epoch and d["gen"] == stamp.gen for d in docs)
        counters = [d["n"] for d in docs]
        assert counters == sorted(set(counters))        # strictly increasing, in order
        assert [d["seq"] for d in docs] == sorted(d["seq"] for d in docs)
    finally:
        watcher.loop_stop()
        watcher.disconnect()
        relay.close()
