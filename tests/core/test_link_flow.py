"""A receiver that acknowledges after its commit gets at most ``link.window`` messages in
flight (MQTT 5 Receive Maximum): a backlog waits at the broker, not in the connection ahead
of the keep-alive's PINGRESP (issue 17: the gateway's link dropped itself under a backlog)."""
from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from helpers.stack import wait_for
from storeedge.config import config_from_dict
from storeedge.link import MqttLink
from storeedge.settings import LinkSection

WINDOW = 25
SENT = 200


@pytest.fixture
def plain(broker_factory):
    return broker_factory("flow", insecure=True)


def test_unacknowledged_messages_in_flight_are_bounded_by_the_window(plain):
    port = int(str(plain.url).rsplit(":", 1)[1])
    cfg = config_from_dict({"url": f"mqtt://127.0.0.1:{port}", "window": WINDOW}, LinkSection)
    held: list[tuple[int, int]] = []
    lock = threading.Lock()

    def hold(msg):                          # a commit that has not finished: no PUBACK yet
        with lock:
            held.append((msg.mid, msg.qos))

    link = MqttLink("se-flow-receiver", cfg, manual_ack=True)
    link.subscribe("flow/#", hold)
    link.start()
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        assert link.wait_connected(20)
        sender.connect("127.0.0.1", port)
        sender.loop_start()
        for i in range(SENT):
            sender.publish("flow/x", str(i).encode(), qos=1).wait_for_publish(10)
        assert wait_for(lambda: len(held) >= WINDOW, 20)
        time.sleep(1.0)                     # the broker would push more now if it could
        assert len(held) == WINDOW
        with lock:
            batch, held[:] = list(held), []
        for mid, qos in batch:              # commits done: the next window comes
            link.ack(mid, qos)
        assert wait_for(lambda: len(held) >= WINDOW, 20)
    finally:
        sender.loop_stop()
        sender.disconnect()
        link.stop()
