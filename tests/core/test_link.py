"""MQTT link behaviour against real brokers: backoff, last will, commands, watermarks."""
from __future__ import annotations

import json
import socket
import threading
import time

import paho.mqtt.client as mqtt

from helpers.stack import Proc, device_config, device_dict, wait_for, write_yaml
from storeedge.brokerproc import free_port, subscribe_acked
from storeedge.config import config_from_dict
from storeedge.link import MqttLink
from storeedge.firmware.common.service import DeviceService
from storeedge.settings import LinkSection


class Watcher:
    """Records every message on a filter (retained ones too), as identity ``ident``
    (id, kind) whose ACL lets it read the filter (and publish what the test publishes)."""

    def __init__(self, broker, topic_filter: str, ident: tuple[str, str] = ("gw-1", "gateway")):
        self.messages: list[mqtt.MQTTMessage] = []
        self.client = broker.client(*ident)
        self.client.on_message = lambda _c, _u, m: self.messages.append(m)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        subscribe_acked(self.client, topic_filter)

    def payloads(self) -> list[dict]:
        return [json.loads(m.payload) for m in self.messages]

    def publish(self, topic: str, doc: dict, retain: bool = False) -> None:
        self.client.publish(topic, json.dumps(doc), qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_reconnect_backoff_doubles_to_the_cap():
    """A listener that accepts and drops every connection: attempts come ever slower, capped."""
    attempts: list[float] = []
    server = socket.socket()
    server.bind(("127.0.0.1", free_port()))
    server.listen(16)
    port = server.getsockname()[1]
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            attempts.append(time.monotonic())
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    cfg = config_from_dict({"url": f"mqtt://127.0.0.1:{port}", "backoff_min_s": 0.1,
                            "backoff_max_s": 1.6}, LinkSection)
    link = MqttLink("backoff-test", cfg)
    link.start()
    assert wait_for(lambda: len(attempts) >= 7, 20)
    link.stop()
    stop.set()
    thread.join(2)
    server.close()
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[0] < 1.0
    assert gaps[3] > 1.5 * gaps[0], f"delays must grow: {gaps}"
    assert max(gaps) < 1.6 + 1.5, f"delays must stay under the cap: {gaps}"


def test_connected_means_subscribed(broker):
    """Once ``wait_connected`` returns, a message another client publishes is delivered.

    Each link is new (no session on the broker), so a subscription the broker has not yet
    processed would silently lose the message; ``connected`` waits for every SUBACK.
    """
    publisher = Watcher(broker, "se/v1/s0042/gateway/gw-1/unused")   # the gateway writes cmd
    cfg = config_from_dict(broker.link("dev-ready"), LinkSection)
    base = "se/v1/s0042/sim/dev-ready/cmd"
    missed = []
    try:
        for i in range(40):
            got = threading.Event()
            link = MqttLink(f"ready-{i}-{time.monotonic_ns()}", cfg)
            for n in range(20):        # many filters: more SUBACKs to wait for
                link.subscribe(f"{base}/r{i}-{n}", lambda _m, got=got: got.set())
            link.start()
            assert link.wait_connected(10)
            publisher.client.publish(f"{base}/r{i}-19", b"x", qos=1)
            if not got.wait(5):
                missed.append(i)
            link.stop()
    finally:
        publisher.close()
    assert not missed, f"messages lost right after connect on rounds {missed}"


def test_last_will_marks_a_killed_device_offline(broker, tmp_path):
    watcher = Watcher(broker, "se/v1/+/+/+/state", ("store-1", "store_server"))
    cfg = write_yaml(tmp_path / "dev.yaml", device_dict("dev-w", broker.url, tmp_path))
    proc = Proc(["storeedge.firmware.common.simdevice", "--config", str(cfg), "--rate", "5"],
                tmp_path / "dev.log").start()
    try:
        assert wait_for(lambda: {"online"} <= {p["state"] for p in watcher.payloads()}, 20)
        proc.kill()
        assert wait_for(lambda: watcher.payloads()[-1]["state"] == "offline", 20)
    finally:
        proc.stop()
        watcher.close()


def test_commands_run_once_and_never_from_retained(broker, tmp_path):
    watcher = Watcher(broker, "se/v1/+/+/+/evt/device.command")
    runs = []
    cfg = device_config("dev-c", broker.url, tmp_path)
    cfg.security.insecure = True     # unsigned here; signed commands: tests/core
    svc = DeviceService(cfg)
    svc.on_command("ping", lambda cmd: runs.append(cmd) or {"pong": cmd.args.get("n")})
    svc.start()
    base = "se/v1/s0042/sim/dev-c/cmd"
    try:
        assert svc.link.wait_connected(10)
        watcher.publish(f"{base}/ping", {"id": "r1", "by": "t", "args": {"n": 1}}, retain=True)
        watcher.publish(f"{base}/ping", {"id": "c1", "by": "tech", "args": {"n": 2}})
        watcher.publish(f"{base}/nope", {"id": "c2", "by": "tech"})
        assert wait_for(lambda: svc.gate.refusals.total["unknown_command"] == 1, 10)
        assert wait_for(lambda: len(watcher.messages) >= 1, 10)
        bodies = [p["body"] for p in watcher.payloads()]
        assert [c.id for c in runs] == ["c1"], "the retained command was not acted on"
        assert bodies == [{"name": "ping", "id": "c1", "by": "unverified:tech", "ok": True,
                           "result": {"pong": 2}, "error": None, "role": ""}]
    finally:
        svc.close()
        watcher.close()


def test_resend_after_watermark_stalls(broker, tmp_path):
    """Nobody acknowledges: the device re-sends everything above the watermark, then stops
    once a watermark covers it."""
    watcher = Watcher(broker, "se/v1/+/+/+/evt/#")
    svc = DeviceService(device_config("dev-r", broker.url, tmp_path))
    svc.start()
    try:
        from storeedge.core_events import SimCounter
        last = [svc.emit(SimCounter(n=i)).seq for i in range(5)][-1]
        assert wait_for(lambda: svc.resends >= last and len(watcher.messages) >= 2 * last, 15), \
            "re-sent after resend_timeout_s"
        seen = [p["seq"] for p in watcher.payloads()]
        assert set(seen) == set(range(1, last + 1))
        watcher.publish("se/v1/s0042/sim/dev-r/ack", {"seq": last}, retain=True)
        assert svc.wait_acked(last, 10)
        time.sleep(0.5)               # a re-send already on the wire before the ack may land
        count = len(watcher.messages)
        time.sleep(2.5)
        assert len(watcher.messages) == count, "nothing re-sent once acknowledged"
    finally:
        svc.close()
        watcher.close()
