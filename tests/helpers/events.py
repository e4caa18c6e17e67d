"""Raw event traffic for broker tests: inject any message, build envelopes, read the store."""
from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helpers.stack import STORE
from storeedge.firmware.common.events import Envelope, format_ts
from storeedge.server.db import open_store_db


class Publisher:
    """A raw MQTT client to inject arbitrary messages."""

    def __init__(self, url: str):
        port = int(url.rsplit(":", 1)[1])
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def envelope(dev: str, seq: int, n: int, kind: str = "sim", **over) -> Envelope:
    """A ``sim.counter`` envelope of ``dev`` (fields overridable)."""
    fields = dict(dev=dev, kind=kind, store=STORE, boot=str(uuid.uuid4()), seq=seq,
                  ts=format_ts(1_795_000_000 + seq), type="sim.counter", prio=2,
                  body={"n": n, "pad": ""})
    fields.update(over)
    return Envelope(**fields)


def stored(db_url: str, dev: str) -> list[int]:
    """Seqs of ``dev``'s real events in the store database, in order."""
    db = open_store_db(db_url)
    try:
        return [s for s, t, _b in db.events_of(dev) if t != "placeholder"]
    finally:
        db.close()
