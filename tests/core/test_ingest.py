"""Ingest hardening: hostile envelopes are refused with a counted reason, cheaply, and a wrong
store-side watermark costs the gateway a resend, never an event (real Mosquitto, SQLite)."""
from __future__ import annotations

import json

import pytest

from helpers.events import Publisher, envelope, stored
from helpers.stack import gateway_config, store_dict, wait_for
from storeedge import topics
from storeedge.config import config_from_dict
from storeedge.events import Envelope
from storeedge.ingest import (MAX_DECLARED_SPAN, MAX_DEPTH, Rejection, Screen,
                                              Watermark)
from storeedge.firmware.gateway.relay import Relay
from storeedge.firmware.gateway.store import GatewayStore, Incoming
from storeedge.server.config import StoreServerConfig
from storeedge.server.consumer import StoreServer

DEV = "dev-h"
TS = "2026-01-01T00:00:02.000000Z"


def coalesced(seq: int, covers, dev: str = DEV):
    body = {"of_type": "sim.reading", "count": 2, "first_ts": "2026-01-01T00:00:00Z",
            "last_ts": "2026-01-01T00:00:01Z", "covers": covers, "fields": {}}
    return Envelope(dev, "sim", "s0042", "b", seq, TS, "telemetry.coalesced", 3, body)


def salvaged(seq: int, lost, dev: str = DEV):
    body = {"moved_to": "/data/x", "reason": "corrupt", "recovered": 0, "unreadable": 1,
            "lost": lost}
    return Envelope(dev, "sim", "s0042", "b", seq, TS, "outbox.salvaged", 1, body)


def screen_one(env_or_bytes, topic: str | None = None, screen: Screen | None = None):
    screen = screen or Screen()
    if isinstance(env_or_bytes, bytes):
        return screen.check(topic, env_or_bytes), screen
    return screen.check(env_or_bytes.topic, env_or_bytes.to_json()), screen


@pytest.mark.parametrize("make, reason", [
    (lambda: coalesced(27, [[7, 27]]), "bad_range"),             # covers its own seq
    (lambda: coalesced(27, [[28, 40]]), "bad_range"),            # covers the future
    (lambda: coalesced(10**6 + 1, [[1, 10**6]]), "bad_range"),   # beyond the outbox span
    (lambda: coalesced(2**62 + 1, [[1, 2**62]]), "bad_range"),
    (lambda: coalesced(27, [[9, 7]]), "bad_range"),
    (lambda: coalesced(27, [[0, 3]]), "bad_range"),
    (lambda: salvaged(50, [[10, 60]]), "bad_range"),
    (lambda: envelope(DEV, 1, 1, type="sim.nosuch"), "unknown_type"),
    (lambda: envelope(DEV, 1, 1, type="sim.counter", body={"n": 1, "pad": ""}, prio=0),
     "schema"),
])
def test_hostile_envelopes_are_refused_with_their_reason(make, reason):
    got, screen = screen_one(make())
    assert isinstance(got, Rejection) and got.reason == reason, got
    assert screen.counts == {reason: 1}


def test_genuine_summaries_within_the_span_pass():
    for env in (coalesced(27, [[7, 9], [11, 26]]), salvaged(50, [[1, 49]]),
                coalesced(MAX_DECLARED_SPAN + 10, [[10, MAX_DECLARED_SPAN + 9]])):
        got, _ = screen_one(env)
        assert not isinstance(got, Rejection), got


@pytest.mark.parametrize("text, reason", [
    ('{"n":NaN,"pad":""}', "non_finite"),
    ('{"n":1,"pad":"","x":[Infinity]}', "non_finite"),
    ('{"n":1e999,"pad":""}', "non_finite"),
    ('{"n":1,"pad":"","x":' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}", "too_deep"),
    ('{"n":1,"pad":"","x":' + "[" * 100_000 + "]" * 100_000 + "}", "too_deep"),
    ('{"n":1,"pad":"","x":' + '{"a":' * 5000 + "1" + "}" * 5000 + "}", "too_deep"),
])
def test_non_finite_numbers_and_deep_nesting_are_refused_without_a_traceback(text, reason,
                                                                              caplog):
    # an unknown type with an Any body would skip schema checks: the tree check comes first
    env = envelope(DEV, 1, 1)
    raw = env.to_json().replace(b'"body":{"n":1,"pad":""}', b'"body":' + text.encode())
    got, screen = screen_one(raw, env.topic, Screen(max_payload=2**20, strict_bodies=False))
    assert isinstance(got, Rejection) and got.reason == reason, got
    assert screen.counts == {reason: 1}
    assert not any(r.exc_info for r in caplog.records), "no traceback per message"


def test_watermark_accounts_for_a_huge_range_in_one_entry():
    mark = Watermark(0)
    mark.add_range(5, 5 + MAX_DECLARED_SPAN)
    mark.add(2)
    held = list(zip(mark._lo, mark._hi))
    assert mark.wm == 0 and held == [(2, 2), (5, 5 + MAX_DECLARED_SPAN)]
    assert len(mark._lo) == 2, "ranges, not one set entry per seq"
    mark.add(1)
    mark.add(3)
    mark.add(4)
    assert mark.wm == 5 + MAX_DECLARED_SPAN and not mark._lo


def test_gateway_store_refuses_a_giant_cover_and_keeps_the_real_events(tmp_path):
    """``covers: [[1, 1000000]]`` never reaches the gateway store as placeholders; a forged
    summary inside the span cannot cost the real events at the seqs it claims."""
    screen, store = Screen(), GatewayStore(str(tmp_path / "gw.db"))
    try:
        def put(env):
            return store.submit(Incoming(screen.check(env.topic, env.to_json()),
                                         env.to_json())).wait(10)

        assert put(coalesced(10**6 + 1, [[1, 10**6]])).status == "rejected:bad_range"
        rows = store.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert rows == 0
        assert put(coalesced(30, [[7, 29]])).status == "stored"       # forged, unsealed
        real = [envelope(DEV, s, s) for s in range(1, 30)]
        assert all(put(e).status == "stored" for e in real), "placeholders never win"
        held = store.forwardable(DEV, 0, 30, 100)
        assert [r[0] for r in held if r[3] is not None] == list(range(1, 31))
    finally:
        store.close()


def test_store_server_computes_the_missing_seqs_of_a_summary_in_one_query(tmp_path):
    """No query per seq under the DB lock: one range read however long the range."""
    cfg = config_from_dict({**store_dict("mqtt://127.0.0.1:9", f"sqlite:///{tmp_path}/s.db"),
                            "security": {"insecure": True}}, StoreServerConfig)
    server = StoreServer(cfg)                   # the link is never started: no broker needed
    calls = []
    real_held = server.db.held

    def counting(dev, spans):
        calls.extend(spans)
        return real_held(dev, spans)

    server.db.held = counting
    try:
        span = 50_000
        for s in (1, 2):
            server.committer.submit(server.screen.check(*_msg(envelope(DEV, s, s)))).wait(10)
        calls.clear()
        env = coalesced(span + 3, [[3, span + 2]])
        server.committer.submit(server.screen.check(*_msg(env))).wait(30)
        assert len([c for c in calls if c[1] - c[0] > 10]) == 1, calls[:5]
        assert server.db.watermark(DEV) == span + 3
        assert server.db.query("SELECT COUNT(*) FROM events WHERE placeholder=1")[0][0] == span
    finally:
        server.committer.close()
        server.db.close()


def _msg(env) -> tuple[str, bytes]:
    return env.topic, env.to_json()


def test_forged_retained_store_watermark_costs_a_resend_never_an_event(broker_factory,
                                                                        tmp_path):
    """Reproduces the attack: while the store server is down (and the store broker lost what
    was queued for it) a retained ``{"seq": 9}`` lands on a device's store-side ack topic; the
    gateway must still deliver 5..9 once the store server is back."""
    down, up = broker_factory("down", role="in_store"), broker_factory("up", role="store")
    db = f"sqlite:///{tmp_path}/store.db"
    relay = Relay(gateway_config(down.url, up.url, tmp_path, keep_confirmed=100))
    scfg = _insecure_store(up.url, db)
    relay.start()
    store = StoreServer(scfg)
    store.start()
    pub = Publisher(down.url)
    forger = Publisher(up.url)
    try:
        assert relay.down.wait_connected(10) and store.link.wait_connected(10)
        for s in range(1, 5):
            pub.send(envelope(DEV, s, s).topic, envelope(DEV, s, s).to_json())
        assert wait_for(lambda: stored(db, DEV) == [1, 2, 3, 4], 20)
        store.close()
        up.restart(kill=True)          # no persistence: what was queued for the store is gone
        assert relay.up.wait_connected(20)
        for s in range(5, 10):
            pub.send(envelope(DEV, s, s).topic, envelope(DEV, s, s).to_json())
        assert wait_for(lambda: relay.store.devices[DEV].mark.wm == 9, 10)
        assert wait_for(lambda: relay.cursors[DEV].sent == 9, 10), "5..9 went nowhere"
        forger.send(topics.ack("s0042", "sim", DEV), json.dumps({"seq": 9}).encode(),
                    retain=True)
        assert wait_for(lambda: relay.store.devices[DEV].confirmed == 9, 10), \
            "the forged mark was heard (the ACL is what keeps it out; this tests the fallback)"
        store = StoreServer(scfg)
        store.start()
        for s in range(10, 13):
            pub.send(envelope(DEV, s, s).topic, envelope(DEV, s, s).to_json())
        assert wait_for(lambda: stored(db, DEV) == list(range(1, 13)), 30), stored(db, DEV)
    finally:
        pub.close()
        forger.close()
        relay.close()
        store.close()


def _insecure_store(url, db: str) -> StoreServerConfig:
    """A store server that accepts unsealed events (this file tests ingest, not seals)."""
    return config_from_dict({**store_dict(url, db), "security": {"insecure": True}},
                            StoreServerConfig)



def _variants() -> list[bytes]:
    good = envelope(DEV, 5, 5).to_json()
    sealed = good[:-1] + b',"seal":"' + b"ab" * 32 + b'"}'
    out = [good, sealed, sealed.replace(b'"seal":"', b'"seal":"Z'), good[:-1] + b',"seal":null}',
           good.replace(b'"seq":5', b'"seq":true'), good.replace(b'"seq":5', b'"seq":5.0'),
           good.replace(b'"seq":5', b'"seq":0'),
           good.replace(b'"seq":5', b'"seq":9223372036854775808'),
           good.replace(b'"v":1', b'"v":2'), good.replace(b'"prio":2', b'"prio":4'),
           good.replace(b'"dev":"dev-h"', b'"dev":"dev-h\\n"'),
           good.replace(b'"dev-h"', b'"Dev"'),
           good.replace(b'"type":"sim.counter"', b'"type":"sim"'), good[:-1] + b',"x":1}',
           envelope(DEV, 5, 5, ts="2026-13-01T00:00:00Z").to_json(),
           envelope(DEV, 5, 5, ts="2026-02-30T00:00:00.5Z").to_json(),
           envelope(DEV, 5, 5, ts="2026-02-03t00:00:00Z").to_json(),
           good.replace(b'"boot":"', b'"boot":"' + b"b" * 70), b"[1]", b"\xff", b'{"v":1}',
           good.replace(b'"body":{', b'"body":{"deep":' + b"[" * 3000 + b"]" * 3000 + b","),
           good.replace(b'"n":5', b'"n":NaN'), good.replace(b'"n":5', b'"n":1e999')]
    out.append(good[:-1] + b',"seq":6}')                        # duplicate key: last wins
    return out


def test_compiled_and_pure_envelope_decoding_agree():
    """The msgspec fast path accepts exactly what the pure path accepts, with equal results
    (run in both modes: the fast decoder is built here even under STOREEDGE_PURE=1)."""
    import msgspec

    from storeedge import events
    fast = events._FastEnvelope(msgspec)
    accepted = 0
    for raw in _variants():
        try:
            pure = events.Envelope.from_dict(json.loads(raw))
        except (ValueError, RecursionError):
            pure = None
        got = fast.decode(raw)       # None: from_json falls back to the pure path
        if got is not None:
            accepted += 1
            assert got == pure, (raw[:120], got, pure)
    assert accepted == 3, "valid envelopes (plain, sealed, duplicate key) take the compiled path"


def test_outbox_never_makes_a_summary_receivers_would_refuse(tmp_path, monkeypatch):
    """Coalescing keeps ``covers`` within the span receivers accept (span shrunk to 50 here)."""
    from storeedge.firmware.common import outbox as outbox_mod
    from storeedge.core_events import SimReading
    from storeedge.firmware.common.outbox import Identity, Outbox
    from storeedge.settings import OutboxSection

    monkeypatch.setattr(outbox_mod, "MAX_DECLARED_SPAN", 50)
    cfg = OutboxSection(path=str(tmp_path / "o.db"), max_bytes=64 * 1024, max_event_bytes=4096,
                        reserve_fraction=0.5)
    box = Outbox(cfg, Identity(DEV, "sim", "s0042"))
    try:
        for i in range(600):
            try:
                box.append(SimReading(value=float(i)), ts=1_795_000_000.0)
            except Exception:
                break
        summaries = [r for r in box.pending_after(0, 100_000) if r.type == "telemetry.coalesced"]
        assert summaries, "pressure made summaries"
        screen = Screen(max_span=50)
        for row in summaries:
            topic = f"se/v1/s0042/sim/{DEV}/evt/telemetry.coalesced"
            assert not isinstance(screen.check(topic, row.payload), Rejection), row.seq
    finally:
        box.close()
