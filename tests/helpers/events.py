"""Raw event traffic for broker tests: inject any message, build envelopes, read the store."""
from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helpers.stack import GATEWAY_ID, STORE
from storeedge import topics
from storeedge.events import Envelope, format_ts
from storeedge.server.db import open_store_db


class Publisher:
    """A raw MQTT client to inject arbitrary messages, as the identity allowed to send them.

    On a TLS test broker each message goes out under the identity whose ACL lets it publish
    there (see :func:`sender_for`): a device's own topics as that device, batches and (on a
    store-role broker) events as the gateway, acks and commands as the gateway (in-store) or
    the store server. ``ident=(id, kind)`` forces one identity for every message.
    """

    def __init__(self, url, ident: tuple[str, str] | None = None):
        self.url, self.ident = url, ident
        self.broker = getattr(url, "broker", None)
        self.clients: dict[tuple[str, str] | None, mqtt.Client] = {}
        self.refused: dict[int, str] = {}

    def _on_publish(self, _client, _userdata, mid, reason_code, _props) -> None:
        if reason_code.is_failure:
            self.refused[mid] = str(reason_code)

    def _client(self, ident) -> mqtt.Client:
        if ident not in self.clients:
            if self.broker is None or self.broker.insecure:
                client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            else:
                client = self.broker.client(*ident)
            client.on_publish = self._on_publish
            client.connect("127.0.0.1", int(str(self.url).rsplit(":", 1)[1]))
            client.loop_start()
            self.clients[ident] = client
        return self.clients[ident]

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the PUBACK; a publish the broker refuses raises
        ``PermissionError`` (mids are per client: checked right after its own PUBACK)."""
        ident = self.ident or sender_for(topic, getattr(self.broker, "role", "both"))
        info = self._client(ident).publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)
        if info.mid in self.refused:
            raise PermissionError(f"broker refused {ident} publishing on {topic}: "
                                  f"{self.refused.pop(info.mid)}")

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()


def sender_for(topic: str, role: str) -> tuple[str, str]:
    """The (id, kind) the broker's ACL lets publish on ``topic`` (role of the broker)."""
    parts = topics.parse(topic)
    if parts is None:
        raise ValueError(f"{topic!r} is not a storeedge device topic")
    if parts.channel in ("evt", "state") and role != "store":
        return parts.dev, parts.kind
    if parts.channel in ("evt", "state", "batch") or role == "in_store":
        return GATEWAY_ID, "gateway"
    return "store-1", "store_server"


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
