"""One dedupe/conflict/placeholder implementation (storeedge.dedupe): its decisions, and the
gateway store (bytes) and the store server (JSON) reaching the same ones on real SQLite, the
server reading what is held in one query per device per batch."""
from __future__ import annotations

import json

import pytest

from helpers.events import envelope
from helpers.stack import store_dict
from storeedge import dedupe
from storeedge.config import config_from_dict
from storeedge.dedupe import ABSENT, Candidate, Span, Verdict
from storeedge.events import Envelope
from storeedge.firmware.gateway.store import GatewayStore, Incoming
from storeedge.ingest import Screen
from storeedge.server.config import StoreServerConfig
from storeedge.server.consumer import StoreServer

DEV = "dev-d"
BOOT = "boot-1"


def _env(seq: int, n: int | None = None) -> Envelope:
    return envelope(DEV, seq, seq if n is None else n, boot=BOOT)


def _coalesced(seq: int, covers) -> Envelope:
    body = {"of_type": "sim.reading", "count": 2, "first_ts": "2026-01-01T00:00:00Z",
            "last_ts": "2026-01-01T00:00:01Z", "covers": covers, "fields": {}}
    return envelope(DEV, seq, 0, boot=BOOT, type="telemetry.coalesced", prio=3, body=body)


def _salvaged(seq: int, lost) -> Envelope:
    body = {"moved_to": "/data/x", "reason": "corrupt", "recovered": 0, "unreadable": 1,
            "lost": lost}
    return envelope(DEV, seq, 0, boot=BOOT, type="outbox.salvaged", prio=1, body=body)


def _json(env: Envelope) -> Candidate:
    return Candidate(env, json.dumps(env.body, separators=(",", ":")))


@pytest.mark.parametrize("stored, incoming, verdict", [
    (ABSENT, b"a", Verdict.NEW),
    (None, b"a", Verdict.FILL),
    (b"a", b"a", Verdict.DUPLICATE),
    (b"a", b"b", Verdict.CONFLICT),
])
def test_judge_on_bytes(stored, incoming, verdict):
    assert dedupe.judge(stored, incoming) is verdict


def test_judge_on_json_ignores_key_order_but_not_values():
    assert dedupe.judge('{"a":1,"b":2}', '{"b":2,"a":1}', dedupe.same_json) is Verdict.DUPLICATE
    assert dedupe.judge('{"a":1,"b":2}', '{"a":1,"b":3}', dedupe.same_json) is Verdict.CONFLICT


def test_spans_clip_and_missing():
    assert dedupe.spans([1, 2, 3, 7, 9, 10]) == [Span(1, 3), Span(7, 7), Span(9, 10)]
    assert dedupe.clip(3, 9, 5) == Span(6, 9)
    assert dedupe.clip(3, 5, 5) is None
    assert dedupe.missing(1, 10, 4, {6: "x", 8: None}) == [5, 7, 9, 10]


def test_lookup_spans_cover_the_batch_and_the_declared_ranges_above_the_floor():
    envs = [_env(101), _env(102), _coalesced(5000, [[4000, 4999]]), _salvaged(5001, [[1, 50]])]
    got = dedupe.lookup_spans(envs, floor=100)
    assert got == [Span(101, 102), Span(4000, 5001)]   # [1, 50] is below the floor


def test_plan_batch_judges_in_order_then_claims_what_nothing_holds():
    held = {3: '{"n":3,"pad":""}', 4: None, 5: '{"n":5,"pad":""}'}
    batch = [_json(_env(3)), _json(_env(4)), _json(_env(5, n=99)), _json(_env(6)),
             _json(_env(6, n=77)), _json(_coalesced(12, [[2, 11]])), _json(_env(8))]
    plan = dedupe.plan_batch(batch, held, floor=2, same=dedupe.same_json)
    assert [c.env.seq for c in plan.duplicates] == [3]
    assert [c.env.seq for c in plan.fills] == [4]
    assert [c.env.seq for c in plan.conflicts] == [5, 6]      # reused seq, and twice in a batch
    assert [c.env.seq for c in plan.fresh] == [6, 12, 8]
    # seq 8 arrives after the summary in the same batch: never a placeholder
    assert [(c.env.seq, c.seqs) for c in plan.claims] == [(12, [7, 9, 10, 11])]
    assert held[7] is None and held[8] == '{"n":8,"pad":""}'


def test_plan_batch_overlapping_claims_are_claimed_once():
    batch = [_json(_salvaged(20, [[5, 9]])), _json(_salvaged(21, [[7, 12]]))]
    plan = dedupe.plan_batch(batch, {}, floor=6)
    assert [c.seqs for c in plan.claims] == [[7, 8, 9], [10, 11, 12]]


# ----------------------------------------------------------------- both receivers, real SQLite

SCRIPT = [_env(1), _env(2), _env(2), _env(3, n=99), _env(3), _coalesced(9, [[4, 8]]),
          _env(6), _env(10), _env(10, n=5), _env(11)]
"""seq 2 twice (duplicate), 3 reused with other content (conflict), a summary for 4..8, then
a real 6 (a placeholder's seq), 10 twice with different content (conflict)."""


def _gateway_outcome(tmp_path) -> tuple[list[str], list[int]]:
    screen, store = Screen(), GatewayStore(str(tmp_path / "gw.db"))
    try:
        statuses = [store.submit(Incoming(screen.check(e.topic, e.to_json()), e.to_json()))
                    .wait(10).status for e in SCRIPT]
        holes = [r[0] for r in store.forwardable(DEV, 0, 100, 100) if r[3] is None]
        return statuses, holes
    finally:
        store.close()


def _server(tmp_path) -> StoreServer:
    cfg = config_from_dict({**store_dict("mqtt://127.0.0.1:9", f"sqlite:///{tmp_path}/s.db"),
                            "security": {"insecure": True}}, StoreServerConfig)
    return StoreServer(cfg)                     # the link is never started: no broker needed


def test_gateway_and_store_server_count_the_same_duplicates_and_conflicts(tmp_path):
    statuses, gw_placeholders = _gateway_outcome(tmp_path)
    assert statuses.count("duplicate") == 1 and statuses.count("conflict") == 2
    assert statuses[6] == "stored", "the gateway keeps a real event a summary claimed"
    assert gw_placeholders == [4, 5, 7, 8]

    server = _server(tmp_path)
    try:
        for env in SCRIPT:
            server.committer.submit(server.screen.check(env.topic, env.to_json())).wait(10)
        [(_dev, _kind, stored, placeholders, wm, dups, conflicts)] = server.db.device_counts()
        assert (conflicts, wm) == (2, 11)
        assert dups == 2, "the duplicate of 2, and 6 whose seq the summary had accounted for"
        assert (stored, placeholders) == (6, 5)
        rows = server.db.events_of(DEV)
        assert [s for s, t, _b in rows if t == "placeholder"] == [4, 5, 6, 7, 8]
        assert dict((s, b) for s, _t, b in rows)[3] == {"n": 99, "pad": ""}, "first one kept"
    finally:
        server.committer.close()
        server.db.close()


def test_store_server_reads_what_is_held_once_per_device_per_batch(tmp_path):
    server = _server(tmp_path)
    lookups = []
    server.db.conn.set_trace_callback(
        lambda sql: lookups.append(sql) if sql.startswith("SELECT seq, body FROM events")
        else None)
    try:
        first = [_env(s) for s in range(1, 201)]
        server.committer.submit(first).wait(10)
        assert len(lookups) == 1
        lookups.clear()
        again = first[150:] + [_env(s) for s in range(201, 400)] + [_coalesced(500, [[400, 499]])]
        server.committer.submit(again).wait(10)
        assert len(lookups) == 1, lookups
        [(_d, _k, stored, placeholders, wm, dups, _c)] = server.db.device_counts()
        assert (stored, placeholders, wm, dups) == (400, 100, 500, 50)
    finally:
        server.db.conn.set_trace_callback(None)
        server.committer.close()
        server.db.close()
