"""POS feeds: serial tap (pyserial URL), MQTT topic, and replay. Each has ``poll()`` that
returns what arrived since the last call (events and rejections, in arrival order), and
``close()``. Times are stamped with ``clock.monotonic()`` on arrival (s)."""
from __future__ import annotations

import json
import logging
import queue
import threading

from storeedge.drivers.pos.exc import PosFeedIOError
from storeedge.drivers.pos.parser import AimLineParser, PosEvent, Rejected, escape, parse_line

log = logging.getLogger("storeedge.drivers.pos")


class PosFeed:
    """Base: a thread-safe inbox drained by :meth:`poll`."""

    def __init__(self):
        self._inbox: queue.Queue = queue.Queue()
        self.accepted = 0
        self.rejected = 0

    def _deliver(self, items) -> None:
        for item in items:
            if isinstance(item, Rejected):
                self.rejected += 1
                log.warning("POS line rejected (%s): %s", item.reason, item.sample)
            else:
                self.accepted += 1
            self._inbox.put(item)

    def poll(self, now: float | None = None) -> list[PosEvent | Rejected]:
        out = []
        while True:
            try:
                out.append(self._inbox.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Stop the feed (idempotent)."""


class SerialPosFeed(PosFeed):
    """Scanner serial tap on pyserial ``url`` (``/dev/ttyUSB0``, ``loop://``, a pty...)."""

    def __init__(self, url: str, *, clock, baudrate: int = 9600, port=None):
        super().__init__()
        from storeedge.drivers.serial import open_port

        self.port = port if port is not None else open_port(url, baudrate=baudrate, timeout=0.1)
        self.clock = clock
        self.parser = AimLineParser()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pos-serial", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.port.read(256)
            except Exception as exc:           # port vanished (USB unplugged)
                log.error("POS serial port failed: %s", exc)
                self._stop.wait(1.0)
                continue
            if data:
                self._deliver(self.parser.feed(data, self.clock.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        try:
            self.port.close()
        except Exception:
            pass


def parse_mqtt_payload(payload: bytes, t: float) -> PosEvent | Rejected:
    """``{"type": "scan", "code": "...", "symbology": "]E0"}`` or ``{"type": "txn_start",
    "txn": "..."}`` / ``{"type": "txn_end", "txn": "..."}``."""
    try:
        doc = json.loads(payload)
        kind = doc["type"]
    except (ValueError, TypeError, KeyError):
        return Rejected(t, "not a POS JSON message", escape(payload))
    if kind in ("txn_start", "txn_end"):
        return PosEvent(kind, t, txn=str(doc.get("txn", ""))[:64])
    if kind != "scan" or not isinstance(doc.get("code"), str):
        return Rejected(t, f"unknown POS message type {kind!r}", escape(payload))
    line = (doc.get("symbology") or "") + doc["code"]
    result = parse_line(line.encode("ascii", "replace"), t)
    return result._replace(txn=str(doc.get("txn", ""))[:64]) if isinstance(result, PosEvent) \
        else result


class MqttPosFeed(PosFeed):
    """POS events published by the POS on an MQTT topic (paho-mqtt, QoS 1)."""

    def __init__(self, url: str, topic: str, *, clock, client_id: str = ""):
        super().__init__()
        import paho.mqtt.client as mqtt
        from urllib.parse import urlparse

        u = urlparse(url)
        self.clock, self.topic = clock, topic
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if u.username:
            self.client.username_pw_set(u.username, u.password)
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        try:
            self.client.connect(u.hostname or "127.0.0.1", u.port or 1883, keepalive=30)
        except OSError as exc:
            raise PosFeedIOError(f"cannot connect to POS broker {url}: {exc}") from exc
        self.client.loop_start()

    def _on_message(self, _client, _userdata, msg) -> None:
        if msg.retain:
            return                      # an old retained message is not a new scan
        self._deliver([parse_mqtt_payload(msg.payload, self.clock.monotonic())])

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class ReplayPosFeed(PosFeed):
    """Recorded POS lines replayed by time: ``records`` are (t_s, line_bytes) for scans or
    (t_s, "txn_start"/"txn_end"); :meth:`poll(now)` returns those with t <= now."""

    def __init__(self, records):
        super().__init__()
        self._records = sorted(records, key=lambda r: r[0])
        self._k = 0

    def poll(self, now: float | None = None) -> list[PosEvent | Rejected]:
        out = []
        while self._k < len(self._records) and (now is None or self._records[self._k][0] <= now):
            t, line = self._records[self._k]
            self._k += 1
            if line in ("txn_start", "txn_end"):
                item = PosEvent(line, t)
            else:
                item = AimLineParser().feed(bytes(line) + b"\r", t)[0]
            self._deliver([item])
            self._inbox.get_nowait()
            out.append(item)
        return out

    @property
    def finished(self) -> bool:
        return self._k >= len(self._records)
