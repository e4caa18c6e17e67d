"""Batch frames (gateway -> store server): framing, screening, and the store server end to end."""
from __future__ import annotations

import random
import time

import pytest

from helpers.events import Publisher, envelope, stored
from helpers.seals import sealed_json
from helpers.stack import STORE, device_config, event_path, store_config, wait_for
from storeedge import topics
from storeedge.batch import MAGIC, encode_batch, pack_batches, split_batch
from storeedge.core_events import SimCounter
from storeedge.exc import BatchError
from storeedge.ingest import Rejection, Screen
from storeedge.firmware.common.service import DeviceService
from storeedge.server.consumer import StoreServer
from storeedge.server.db import open_store_db



def test_frames_round_trip_in_order_and_respect_the_size_limit():
    rng = random.Random(5)
    payloads = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
                for _ in range(500)]
    limit = 2000
    groups = list(pack_batches(payloads, limit))
    assert [p for g in groups for p in g] == payloads
    for group in groups:
        frame = encode_batch(group)
        assert len(frame) <= limit
        assert split_batch(frame) == group
    assert len(groups) > 10


def test_an_element_too_big_to_share_goes_alone():
    big, small = b"x" * 5000, b"y" * 10
    assert list(pack_batches([small, big, small], 1000)) == [[small], [big], [small]]


@pytest.mark.parametrize("frame, words", [
    (b"", "not a batch frame"),
    (b"NOPE" + b"\x00\x00\x00\x01x", "not a batch frame"),
    (MAGIC, "empty"),
    (MAGIC + b"\x00\x00", "truncated length"),
    (MAGIC + b"\x00\x00\x00\x09abc", "claims 9 bytes, only 3 left"),
    (encode_batch([b"a"]) + b"\x00", "truncated length"),
])
def test_malformed_frames_are_refused_with_a_reason(frame, words):
    with pytest.raises(BatchError, match=words):
        split_batch(frame)


def test_too_many_elements_are_refused():
    with pytest.raises(BatchError, match="more than 3"):
        split_batch(encode_batch([b"a"] * 4), max_items=3)


def test_screen_checks_each_element_against_the_batch_topic():
    screen = Screen(max_payload=4096)
    good = [envelope("dev-b", i, i) for i in (1, 2)]
    other = envelope("dev-x", 3, 3)
    frame = encode_batch([good[0].to_json(), b"{nope", other.to_json(), good[1].to_json(),
                          envelope("dev-b", 4, 4, body={"n": 1, "pad": "p" * 5000}).to_json()])
    out = screen.check_batch(topics.batch(STORE, "sim", "dev-b"), frame)
    assert [getattr(o, "seq", None) for o in out] == [1, None, None, 2, None]
    assert [o.reason for o in out if isinstance(o, Rejection)] == \
        ["malformed", "topic_mismatch", "oversized"]


def test_screen_refuses_a_whole_frame_on_a_bad_topic_or_size():
    screen = Screen(max_payload=4096, max_batch=100_000)
    frame = encode_batch([envelope("dev-b", 1, 1).to_json()])
    assert [r.reason for r in screen.check_batch(envelope("dev-b", 1, 1).topic, frame)] == \
        ["topic"]
    assert [r.reason for r in screen.check_batch(topics.batch(STORE, "sim", "dev-b"),
                                                 b"\x00" * 200_000)] == ["oversized"]
    assert [r.reason for r in screen.check_batch(topics.batch(STORE, "sim", "dev-b"),
                                                 b"garbage")] == ["malformed"]


def _rejects(db_url: str) -> dict[str, int]:
    db = open_store_db(db_url)
    try:
        return dict(db.query("SELECT reason, count FROM rejects"))
    finally:
        db.close()


def _duplicates(db_url: str, dev: str) -> int:
    db = open_store_db(db_url)
    try:
        rows = db.query("SELECT duplicates FROM devices WHERE dev=?", (dev,))
        return rows[0][0] if rows else 0
    finally:
        db.close()


def test_store_server_stores_batches_once_and_counts_bad_elements(broker, tmp_path):
    db = f"sqlite:///{tmp_path}/store.db"
    store = StoreServer(store_config(broker.url, db))
    store.start()
    pub = Publisher(broker.url)
    topic = topics.batch(STORE, "sim", "dev-b")
    frame = encode_batch([sealed_json(envelope("dev-b", i, i), broker.url) for i in (1, 2, 3)]
                         + [b"{nope", sealed_json(envelope("dev-x", 1, 1), broker.url)])
    try:
        assert store.link.wait_connected(10)
        pub.send(topic, frame)
        assert wait_for(lambda: stored(db, "dev-b") == [1, 2, 3], 15)
        assert wait_for(lambda: _rejects(db) == {"malformed": 1, "topic_mismatch": 1}, 5)
        pub.send(topic, frame)                                     # a re-sent batch
        assert wait_for(lambda: _duplicates(db, "dev-b") == 3, 10)
        pub.send(topic, b"garbage")                                # acknowledged, counted
        assert wait_for(lambda: _rejects(db).get("malformed") == 3, 10)
        assert stored(db, "dev-b") == [1, 2, 3] and stored(db, "dev-x") == []
    finally:
        pub.close()
        store.close()
    time.sleep(0.2)
    restarted = StoreServer(store_config(broker.url, db))          # same session: nothing
    restarted.start()                                              # left unacknowledged
    try:
        assert restarted.link.wait_connected(10)
        time.sleep(1.0)
        assert _rejects(db) == {"malformed": 3, "topic_mismatch": 2}
    finally:
        restarted.close()


@pytest.mark.parametrize("batch_bytes", [0, 300])
def test_relay_without_batches_or_with_tiny_ones_delivers_everything(broker_factory, tmp_path,
                                                                      batch_bytes):
    """0: one message per event (an older store server); 300: about one event per frame."""
    db = f"sqlite:///{tmp_path}/store.db"
    with event_path(broker_factory, tmp_path, batch_bytes=batch_bytes) as (down, *_rest):
        svc = DeviceService(device_config("dev-n", down.url, tmp_path))
        try:
            svc.start()
            last = [svc.emit(SimCounter(n=i)).seq for i in range(60)][-1]
            assert wait_for(lambda: stored(db, "dev-n") == list(range(1, last + 1)), 30)
            assert svc.wait_acked(last, 10)
        finally:
            svc.close()
