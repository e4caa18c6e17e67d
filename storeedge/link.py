"""The MQTT 5 link (paho-mqtt 2.x): QoS 1, persistent session, last will, capped backoff.

* ``clean_start=False`` with a session expiry, so the broker keeps our subscriptions and
  queued QoS 1 messages while we are away.
* Reconnect delay doubles from ``backoff_min_s`` to ``backoff_max_s`` and resets only after a
  CONNACK (paho's own policy, configured through ``reconnect_delay_set``).
* A last will marks the device ``offline`` on its retained ``state`` topic.
* At most ``link.window`` QoS 1 messages in flight to us (MQTT 5 Receive Maximum), so a
  flood waits at the broker, not in our socket ahead of the keep-alive's PINGRESP.
* Subscriptions are remembered and re-made on every connect; a handler runs on paho's network
  thread, so handlers must only parse and hand work off.
* ``connected`` is set only once the broker has acknowledged (SUBACK) every subscription of
  the connect: before that, a message published by another client could find no subscriber
  (a first connect has no stored session) and be gone.
"""
from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from storeedge.exc import LinkError
from storeedge.settings import LinkSection

log = logging.getLogger(__name__)
SESSION_TAKEN_OVER = 0x8E     # MQTT 5 DISCONNECT reason: another client took our client id
TAKEOVER_WINDOW_S = 2.0       # a connection dropped this soon after connecting is suspect...
TAKEOVER_AFTER = 3            # ...from the third in a row (Mosquitto 2.0.11 sends no 0x8E)
Handler = Callable[[mqtt.MQTTMessage], None]


@dataclass(frozen=True)
class Will:
    """Last-will message the broker publishes if we vanish."""

    topic: str
    payload: bytes
    retain: bool = True


@dataclass(frozen=True)
class BrokerAddress:
    """Where to connect, parsed from ``mqtt://host:port`` or ``mqtts://host:port``."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> "BrokerAddress":
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise LinkError(f"broker URL {url!r} must look like mqtt://host:port")
        tls = parsed.scheme == "mqtts"
        return cls(parsed.hostname, parsed.port or (8883 if tls else 1883), tls)


class MqttLink:
    """One MQTT 5 client with a persistent session.

    Args:
        client_id: stable client id (the broker keys the persistent session on it).
        cfg: the ``link`` config section.
        will: optional last will.
        manual_ack: acknowledge received QoS 1 messages only when :meth:`ack` is called.
        on_connect: called (on paho's thread) after each CONNACK, once every subscription
            is acknowledged.
    """

    def __init__(self, client_id: str, cfg: LinkSection, *, will: Will | None = None,
                 manual_ack: bool = False, on_connect: Callable[[], None] | None = None):
        self.cfg = cfg
        self.address = BrokerAddress.parse(cfg.url)
        if not self.address.tls:
            log.warning("INSECURE link to %s:%d: plain mqtt://, unencrypted, no client "
                        "certificate (allowed only by security.insecure)", self.address.host,
                        self.address.port)
        self.connected = threading.Event()
        self.connects = 0
        self._subs: dict[str, tuple[SubscribeOptions, Handler]] = {}
        self._user_on_connect = on_connect
        self._lock = threading.Lock()
        self._stopping = False
        self._pending_subacks: set[int] = set()
        self.client_id = client_id
        self._waits = 0                 # reconnect waits since the last CONNACK (paho's backoff)
        self._ready_at = 0.0            # monotonic time of the last ready connection
        self._short_drops = 0           # connections in a row dropped soon after connecting
        self.takeovers = 0              # connections taken over by another client (same id)
        self.client = self._make_client(client_id, will, manual_ack)

    def _make_client(self, client_id: str, will: Will | None, manual_ack: bool) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5, manual_ack=manual_ack)
        client.reconnect_delay_set(self.cfg.backoff_min_s, self.cfg.backoff_max_s)
        client.max_inflight_messages_set(max(20, min(self.cfg.window, 65000)))
        client.max_queued_messages_set(0)
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, self.cfg.password)
        if self.address.tls:
            files = tls_files(self.cfg)
            client.tls_set(ca_certs=files.ca, certfile=files.cert, keyfile=files.key,
                           cert_reqs=ssl.CERT_REQUIRED)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        return client

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; retries with backoff until :meth:`stop`."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.cfg.session_expiry_s)
        props.ReceiveMaximum = receive_maximum(self.cfg)
        self.client.connect_async(self.address.host, self.address.port,
                                  keepalive=self.cfg.keepalive_s, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def stop(self, final: tuple[str, bytes] | None = None) -> None:
        """Publish ``final`` (topic, payload; retained) if connected, then disconnect cleanly."""
        if final is not None and self.connected.is_set():
            info = self.client.publish(final[0], final[1], qos=1, retain=True)
            info.wait_for_publish(2.0)
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected and subscribed (True) or ``timeout`` seconds pass (False)."""
        return self.connected.wait(timeout)

    # ------------------------------------------------------------------ messaging

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False):
        """Queue a publish; returns paho's MQTTMessageInfo (``.is_published()``)."""
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1, *,
                  commands: bool = False) -> None:
        """Route messages matching ``topic_filter`` to ``handler``; kept across reconnects.

        ``commands=True`` subscribes with MQTT 5 options that keep the retain flag as
        published and skip retained messages at subscription time, so a handler can refuse
        every retained command, live or replayed.
        """
        options = SubscribeOptions(qos=qos, retainAsPublished=commands,
                                   retainHandling=2 if commands else 0)
        with self._lock:
            self._subs[topic_filter] = (options, handler)
        self.client.message_callback_add(_match_filter(topic_filter),
                                         lambda _c, _u, msg: handler(msg))
        if self.client.is_connected():       # else the next connect subscribes it
            self.client.subscribe(topic_filter, options=options)

    def ack(self, mid: int, qos: int) -> None:
        """Send the PUBACK for a message received with ``manual_ack`` (after our commit)."""
        self.client.ack(mid, qos)

    def ack_after_commit(self, ticket, mid: int, qos: int) -> None:
        """PUBACK a message whose commit succeeded; never one whose commit failed.

        A failed commit (disk full, I/O error) drops the connection instead: paho reconnects
        with backoff and the broker re-delivers every unacknowledged message of the session.
        """
        if ticket.error is None:
            self.ack(mid, qos)
            return
        log.error("commit failed (%s): not acknowledging; dropping the connection so the "
                  "broker re-delivers", ticket.error)
        self.drop_connection()

    def drop_connection(self) -> None:
        """Break the TCP connection as a network fault would (paho then reconnects)."""
        sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------------ callbacks

    def _on_connect(self, client, _userdata, _flags, reason_code, _props) -> None:
        if reason_code.is_failure:
            log.error("broker %s:%d refused the connection: %s", self.address.host,
                      self.address.port, reason_code)
            return
        self.connects += 1
        self._waits = 0
        with self._lock:
            subs = list(self._subs.items())
        self._pending_subacks = {client.subscribe(topic_filter, options=options)[1]
                                 for topic_filter, (options, _handler) in subs}
        if not self._pending_subacks:
            self._ready()

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _props) -> None:
        for code in reason_codes:
            if code.is_failure:
                log.error("broker %s:%d refused a subscription: %s", self.address.host,
                          self.address.port, code)
        if mid in self._pending_subacks:
            self._pending_subacks.discard(mid)
            if not self._pending_subacks:
                self._ready()

    def _ready(self) -> None:
        """Connected and every subscription acknowledged (paho's network thread)."""
        self.connected.set()
        self._ready_at = time.monotonic()
        log.info("connected to %s:%d", self.address.host, self.address.port)
        if self._user_on_connect is not None:
            self._user_on_connect()

    def _next_delay(self) -> float:
        """Seconds until paho's next try: backoff_min_s doubling per wait since the last
        CONNACK, capped at backoff_max_s (paho's own policy, reconnect_delay_set)."""
        self._waits += 1
        return min(self.cfg.backoff_min_s * 2 ** (self._waits - 1), self.cfg.backoff_max_s)

    def _on_connect_fail(self, _client, _userdata) -> None:
        if self._stopping:
            return
        log.warning("cannot reach the broker at %s:%d (link.url); next try in %.1f s: check "
                    "that it runs, the host and port, and the firewall", self.address.host,
                    self.address.port, self._next_delay())

    def _on_disconnect(self, _client, _userdata, flags, reason_code, _props) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if self._stopping:
            return
        delay = self._next_delay()
        if getattr(reason_code, "value", None) == SESSION_TAKEN_OVER or (
                was and self._short_lived()):
            self._taken_over(reason_code)
        elif was:
            by = ("by the broker" if getattr(flags, "is_disconnect_packet_from_server", False)
                  else "by us")
            log.warning("disconnected from %s:%d (%s, %s); next try in %.1f s",
                        self.address.host, self.address.port, reason_code, by, delay)
        else:   # CONNECT sent, closed before CONNACK + SUBACKs (e.g. no CONNACK in keepalive_s)
            log.warning("connection to %s:%d closed before it was ready (%s); next try in "
                        "%.1f s", self.address.host, self.address.port, reason_code, delay)

    def _short_lived(self) -> bool:
        """Count connections dropped within TAKEOVER_WINDOW_S of connecting; True from the
        third in a row (what two clients with one client id do to each other)."""
        if time.monotonic() - self._ready_at > TAKEOVER_WINDOW_S:
            self._short_drops = 0
            return False
        self._short_drops += 1
        return self._short_drops >= TAKEOVER_AFTER

    def _taken_over(self, reason_code) -> None:
        """Another client connected with our client id: two devices share a device id."""
        self.takeovers += 1
        if self.takeovers in (1, 10) or self.takeovers % 100 == 0:
            log.error("session taken over at %s:%d (%s; %d so far): another client uses "
                      "client id %s; is a second device running with this device.id? Give "
                      "each device its own id (storeedge store plan)", self.address.host,
                      self.address.port, reason_code, self.takeovers, self.client_id)


class TLSPaths(NamedTuple):
    """The files of a TLS client: CA, certificate, key (None: not used)."""

    ca: str | None
    cert: str | None
    key: str | None


def tls_files(cfg: LinkSection) -> TLSPaths:
    """``tls_ca``/``tls_cert``/``tls_key``, each falling back to the bundle in ``tls_dir``
    (``ca.crt`` and the one ``<id>.crt`` with its ``<id>.key``, as ``storeedge pki enrol``
    writes it)."""
    ca, cert, key = cfg.tls_ca, cfg.tls_cert, cfg.tls_key
    if cfg.tls_dir and not (ca and cert and key):
        folder = Path(cfg.tls_dir)
        ids = sorted(p.stem for p in folder.glob("*.crt") if p.name != "ca.crt")
        if len(ids) != 1:
            raise LinkError(f"link.tls_dir {folder} must hold ca.crt and exactly one "
                            f"<id>.crt (found {ids or 'none'})")
        ca = ca or str(folder / "ca.crt")
        cert = cert or str(folder / f"{ids[0]}.crt")
        key = key or str(folder / f"{ids[0]}.key")
    return TLSPaths(ca, cert, key)


def receive_maximum(cfg: LinkSection) -> int:
    """QoS 1 messages the broker may have in flight to us (MQTT 5 Receive Maximum):
    ``link.window`` (messages), within 20..65535.

    Without it the broker pushes up to 65,535 unacknowledged messages into the connection
    (a session's whole queue after a reconnect); a receiver that commits before each PUBACK
    then reads a PINGRESP only after all of them, and paho drops a connection whose PINGRESP
    is later than ``keepalive_s`` (issue 17: the gateway's device-side link fell into a loop
    of "Keep alive timeout" reconnects under a backlog: 27k duplicates, minutes offline).
    """
    return max(20, min(cfg.window, 65535))


def _match_filter(topic_filter: str) -> str:
    """The filter incoming topics match: ``$share/{group}/`` is not part of a message topic."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


def json_payload(obj: object) -> bytes:
    """Compact JSON bytes for control messages (state, ack, commands)."""
    return json.dumps(obj, separators=(",", ":")).encode()
