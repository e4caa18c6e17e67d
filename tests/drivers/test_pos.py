"""POS feed: AIM-prefixed serial lines, garbage rejection, MQTT payloads, real pyserial ports."""
from __future__ import annotations

import os
import time

import pytest

from storeedge.drivers.clock import SystemClock
from storeedge.drivers.pos import (AimLineParser, PosEvent, Rejected, ReplayPosFeed,
                                   SerialPosFeed, parse_mqtt_payload, scanner_self_test)
from storeedge.drivers.serial import open_port
from storeedge.firmware.checkout.codes import item_key, pos_key


def test_aim_prefix_and_plain_codes():
    p = AimLineParser()
    out = p.feed(b"]E04006381333931\r036000291452\r\n]C1\x1d0104006381333931\r", t=2.0)
    assert [(e.code, e.symbology, e.format) for e in out] == [
        ("4006381333931", "E0", "EAN-13"), ("036000291452", "", None),
        ("0104006381333931", "C1", "Code 128")]
    assert all(e.t == 2.0 for e in out)
    assert pos_key(out[2].code, out[2].format) == pos_key(out[0].code, out[0].format)


def test_line_split_across_reads():
    p = AimLineParser()
    assert p.feed(b"]E0400638", 1.0) == []
    out = p.feed(b"1333931\r", 1.5)
    assert out[0].code == "4006381333931" and out[0].t == 1.5


@pytest.mark.parametrize("line,reason", [
    (b"4006381333932", "bad check digit"),
    (b"\x00\xff\xfe!!", "non-printable bytes"),
    (b"]E0", "empty code"),
    (b"]E012345", "wrong length for EAN-13"),
])
def test_garbage_lines_rejected_and_counted(line, reason):
    p = AimLineParser()
    out = p.feed(line + b"\r4011\r", 0.0)
    assert isinstance(out[0], Rejected) and out[0].reason == reason
    assert isinstance(out[1], PosEvent) and out[1].code == "4011"
    assert (p.rejected, p.accepted) == (1, 1)


def test_overlong_line_rejected_once_then_parser_recovers():
    p = AimLineParser(max_line=32)
    out = p.feed(b"9" * 100 + b"\r]E04006381333931\r", 0.0)
    assert isinstance(out[0], Rejected) and "longer" in out[0].reason
    assert out[1].code == "4006381333931"
    assert p.rejected == 1


def test_rejected_sample_is_escaped_and_short():
    out = AimLineParser().feed(b"\x1b[31m" + b"A" * 80 + b"\r", 0.0)
    assert "\\x1b" in out[0].sample and len(out[0].sample) <= 40


def test_pos_keys_compare_upc_and_ean_equal():
    assert pos_key("036000291452") == pos_key("0036000291452", "EAN-13")
    assert pos_key("036000291452") == item_key("036000291452", "UPC-A")
    assert pos_key("4011") == "PLU:4011"
    with pytest.raises(ValueError):
        pos_key("4006381333932", "EAN-13")


def test_mqtt_payloads():
    ok = parse_mqtt_payload(b'{"type":"scan","code":"4006381333931","symbology":"]E0",'
                            b'"txn":"T1"}', 3.0)
    assert (ok.kind, ok.code, ok.txn) == ("scan", "4006381333931", "T1")
    start = parse_mqtt_payload(b'{"type":"txn_start","txn":"T2"}', 3.0)
    assert (start.kind, start.txn) == ("txn_start", "T2")
    assert isinstance(parse_mqtt_payload(b"not json", 3.0), Rejected)
    assert isinstance(parse_mqtt_payload(b'{"type":"refund"}', 3.0), Rejected)


def _drain(feed, n, timeout=3.0):
    got, end = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < end:
        got += feed.poll()
        time.sleep(0.01)
    return got


def test_serial_feed_over_loop_port():
    port = open_port("loop://", timeout=0.05)
    feed = SerialPosFeed("loop://", clock=SystemClock(), port=port)
    try:
        port.write(b"]E04006381333931\r\x07\x07junk\r4011\r")
        got = _drain(feed, 3)
    finally:
        feed.close()
    assert [type(g).__name__ for g in got] == ["PosEvent", "Rejected", "PosEvent"]
    assert (feed.accepted, feed.rejected) == (2, 1)


def test_serial_feed_over_a_pty():
    master, slave = os.openpty()
    feed = SerialPosFeed(os.ttyname(slave), clock=SystemClock(), baudrate=9600)
    try:
        os.write(master, b"]E04006381333931\r\n")
        got = _drain(feed, 1)
    finally:
        feed.close()
        os.close(master)
        os.close(slave)
    assert got and got[0].code == "4006381333931"


def test_scanner_self_test_over_loopback():
    r = scanner_self_test(open_port("loop://", timeout=0.05), SystemClock(),
                          inject=b"]E04006381333931\r", timeout_s=2.0)
    assert r.ok and r.code == "4006381333931" and r.symbology == "E0"
    bad = scanner_self_test(open_port("loop://", timeout=0.05), SystemClock(),
                            inject=b"4006381333932\r", timeout_s=2.0)
    assert not bad.ok and "check digit" in bad.reason
    silent = scanner_self_test(open_port("loop://", timeout=0.05), SystemClock(), timeout_s=0.3)
    assert not silent.ok and "no scan" in silent.reason


def test_replay_feed_releases_lines_by_time():
    feed = ReplayPosFeed([(1.0, "txn_start"), (2.0, b"]E04006381333931"), (3.0, b"bad\x01")])
    assert [e.kind for e in feed.poll(1.5)] == ["txn_start"]
    assert [type(e).__name__ for e in feed.poll(5.0)] == ["PosEvent", "Rejected"]
    assert feed.finished and feed.poll(9.0) == []


def test_mqtt_feed_with_real_broker(broker_factory):
    """The POS vendor's broker, not ours: plain MQTT, explicitly insecure here."""
    import paho.mqtt.client as mqtt

    from storeedge.drivers.pos import MqttPosFeed

    broker = broker_factory("pos", insecure=True)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    # a stale retained message: delivered on subscription with the retain flag -> ignored
    pub.publish("pos/lane-1/scans", b'{"type":"scan","code":"4011"}', qos=1,
                retain=True).wait_for_publish(2)
    feed = MqttPosFeed(broker.url, "pos/lane-1/scans", clock=SystemClock(),
                       client_id="lane-1-pos")
    try:
        time.sleep(0.5)
        got = []
        end = time.monotonic() + 5
        while not got and time.monotonic() < end:
            pub.publish("pos/lane-1/scans", b'{"type":"txn_start","txn":"T9"}', qos=1).wait_for_publish(2)
            pub.publish("pos/lane-1/scans", b'{"type":"scan","code":"4006381333931",'
                                            b'"symbology":"]E0"}', qos=1).wait_for_publish(2)
            pub.publish("pos/lane-1/scans", b"garbage", qos=1).wait_for_publish(2)
            got = _drain(feed, 3, timeout=2.0)
    finally:
        pub.loop_stop()
        pub.disconnect()
        feed.close()
    kinds = [getattr(g, "kind", "rejected") for g in got[:3]]
    assert kinds == ["txn_start", "scan", "rejected"]
    assert got[1].code == "4006381333931" and got[1].format == "EAN-13"
