"""Security fixtures: the two real brokers with their own roles, and raw TLS peers."""
from __future__ import annotations

import json
import ssl
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from storeedge.brokerproc import subscribe_acked


class Peer:
    """A raw paho MQTT 5 client with one identity's certificate (or none / a foreign one).

    ``publish`` returns the broker's PUBACK reason code as a string ("Success",
    "Not authorized"...); ``messages`` collects what it receives.
    """

    def __init__(self, port: int, *, ca: str, cert: str | None = None, key: str | None = None,
                 client_id: str = "", tls: bool = True):
        self.port = port
        self.messages: list[tuple[str, bytes, bool]] = []
        self.cond = threading.Condition()
        self.connack: str | None = None
        self.puback: dict[int, str] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if tls:
            self.client.tls_set(ca_certs=ca, certfile=cert, keyfile=key,
                                cert_reqs=ssl.CERT_REQUIRED)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.disconnects: list[str] = []

    def _on_connect(self, _c, _u, _f, reason_code, _p) -> None:
        with self.cond:
            self.connack = str(reason_code)
            self.cond.notify_all()

    def _on_disconnect(self, _c, _u, _f, reason_code, _p) -> None:
        with self.cond:
            self.disconnects.append(str(reason_code))
            self.cond.notify_all()

    def _on_message(self, _c, _u, msg) -> None:
        with self.cond:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self.cond.notify_all()

    def _on_publish(self, _c, _u, mid, reason_code, _p) -> None:
        with self.cond:
            # accepted ("Success" or "No matching subscribers") vs the refusal's reason
            self.puback[mid] = str(reason_code) if reason_code.is_failure else "Success"
            self.cond.notify_all()

    def connect(self, timeout: float = 30.0) -> str:
        """Connect; returns the CONNACK reason, or ``refused: ...`` when the broker ends the
        TLS handshake or the connection before a CONNACK."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            return f"refused: {type(exc).__name__}: {exc}"
        self.client.loop_start()
        with self.cond:
            self.cond.wait_for(lambda: self.connack is not None or self.disconnects, timeout)
        if self.connack is None:
            self.client.loop_stop()        # no reconnect attempts in the background
            return f"refused: {self.disconnects[0] if self.disconnects else 'no CONNACK'}"
        return self.connack

    def subscribe(self, topic_filter: str) -> None:
        subscribe_acked(self.client, topic_filter)

    def publish(self, topic: str, doc, retain: bool = False, timeout: float = 30.0) -> str:
        payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.cond:
            self.cond.wait_for(lambda: info.mid in self.puback, timeout)
            return self.puback.get(info.mid, "no PUBACK")

    def wait_for(self, topic: str, doc=None, timeout: float = 30.0) -> bool:
        """Wait until a message on ``topic`` (with JSON payload ``doc``, if given) arrived."""
        def seen() -> bool:
            return any(t == topic and (doc is None or json.loads(p) == doc)
                       for t, p, _r in self.messages)
        with self.cond:
            return self.cond.wait_for(seen, timeout)

    def topics(self) -> list[str]:
        with self.cond:
            return [t for t, _p, _r in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers():
    """Make :class:`Peer` objects for identities: ``peers(broker, dev, kind)``; all closed."""
    made: list[Peer] = []

    def make(broker, dev: str | None = None, kind: str = "sim", **kwargs) -> Peer:
        if dev is None:
            peer = Peer(broker.port, ca=str(broker.pki.ca_crt), **kwargs)
        else:
            link = broker.link(dev, kind)
            peer = Peer(broker.port, ca=link["tls_ca"], cert=link["tls_cert"],
                        key=link["tls_key"], **kwargs)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


@pytest.fixture
def in_store(broker_factory):
    """The in-store broker (devices + gateway ACL)."""
    return broker_factory("in-store", role="in_store")


@pytest.fixture
def store_side(broker_factory):
    """The store broker (gateway + store servers ACL)."""
    return broker_factory("store", role="store")
