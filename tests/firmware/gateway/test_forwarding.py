"""The gateway's forwarding during a drain: live devices first, backlog within the uplink window.

Real Mosquitto brokers (plain, anonymous: only the forwarder's choices matter here) and the
real gateway store; no store server upstream, so nothing is ever confirmed and what the
gateway sends is exactly what its windows allow.
"""
from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers.events import envelope
from helpers.stack import gateway_config, wait_for
from storeedge import topics
from storeedge.batch import split_batch
from storeedge.brokerproc import subscribe_acked
from storeedge.events import Envelope
from storeedge.firmware.gateway.relay import Relay
from storeedge.firmware.gateway.store import GatewayStore, Incoming

BACKLOG = {"dev-a": 900, "dev-b": 700}       # events held, never confirmed
LIVE = ("dev-live", 5)
WINDOW = {"uplink_window": 400, "quantum": 100, "forward_window": 1000,
          "resend_timeout_s": 600.0, "status_every_s": 3600.0}


@pytest.fixture
def brokers(broker_factory):
    return broker_factory("down", insecure=True), broker_factory("up", insecure=True)


class Upstream:
    """A raw subscriber on the store broker: every forwarded event, in arrival order."""

    def __init__(self, url):
        self.order: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", int(str(url).rsplit(":", 1)[1]))
        self.client.loop_start()
        subscribe_acked(self.client, topics.BATCHES_ALL)

    def _on_message(self, _c, _u, msg) -> None:
        envs = [Envelope.from_json(e) for e in split_batch(msg.payload)]
        with self._lock:
            self.order.extend((e.dev, e.seq) for e in envs)

    def seqs(self, dev: str) -> set[int]:
        with self._lock:
            return {s for d, s in self.order if d == dev}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _fill(path: str) -> None:
    """The gateway store holds the backlog devices' events (first) and a live device's."""
    store = GatewayStore(path)
    tickets = []
    for dev, n in [*BACKLOG.items(), LIVE]:
        for seq in range(1, n + 1):
            env = envelope(dev, seq, seq)
            tickets.append(store.submit(Incoming(env, env.to_json())))
    for ticket in tickets:
        ticket.wait(30)
    store.close()


def test_live_device_goes_first_and_backlog_stays_within_the_uplink_window(brokers, tmp_path):
    down, up = brokers
    cfg = gateway_config(down.url, up.url, tmp_path, **WINDOW)
    _fill(cfg.relay.db_path)
    watcher = Upstream(up.url)
    relay = Relay(cfg)
    try:
        relay.start()
        backlog = lambda: sum(len(watcher.seqs(d)) for d in BACKLOG)  # noqa: E731
        # live events count in the window too: the backlog fills what they leave
        full = WINDOW["uplink_window"] - LIVE[1] - 5
        assert wait_for(lambda: backlog() >= full and len(watcher.seqs(LIVE[0])) == LIVE[1],
                        30), (relay.forwarded, len(watcher.order))
        time.sleep(1.0)             # rounds go on: a forwarder ignoring the window sends more
        assert full <= backlog() <= WINDOW["uplink_window"]
        assert watcher.seqs(LIVE[0]) == set(range(1, LIVE[1] + 1))
        # the live device's events went out before any backlog event
        assert watcher.order[0][0] == LIVE[0]
        # per device in seq order, from the first seq
        for dev in BACKLOG:
            seqs = [s for d, s in watcher.order if d == dev]
            assert seqs == list(range(1, len(seqs) + 1))
    finally:
        relay.close()
        watcher.close()
