"""Event envelope and the written schemas the store server reads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from storeedge.events import (Envelope, all_schemas, format_ts, parse_ts,
                                              validate_body)
from storeedge.exc import EventError

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "events.schema.json"


def test_written_schema_is_up_to_date():
    """docs/events.schema.json is what the code generates (regenerate with
    ``python -m storeedge.schemas > docs/events.schema.json``)."""
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(all_schemas()))


def test_every_registered_type_has_a_documented_schema():
    events = all_schemas()["events"]
    assert {"device.started", "telemetry.coalesced", "outbox.salvaged"} <= events.keys()
    for name, schema in events.items():
        assert schema["description"], f"{name} has no description"
        assert schema["x-prio"] in (0, 1, 2, 3)


def test_round_trip_and_compact():
    env = Envelope("d-1", "sim", "s1", "b", 5, format_ts(1_795_000_000.5), "sim.counter", 2,
                   {"n": 1, "pad": ""})
    raw = env.to_json()
    assert b" " not in raw and Envelope.from_json(raw) == env
    assert parse_ts(env.ts) == pytest.approx(1_795_000_000.5)


@pytest.mark.parametrize("doc, words", [
    (b"[1]", "JSON object"),
    (b'{"v":1}', "lacks"),
    (b'{"v":2,"dev":"d","kind":"k","store":"s","boot":"b","seq":1,"ts":"x","type":"a.b",'
     b'"prio":0,"body":{}}', "version"),
    (b'{"v":1,"dev":"D D","kind":"k","store":"s","boot":"b","seq":1,'
     b'"ts":"2026-01-01T00:00:00Z","type":"a.b","prio":0,"body":{}}', "valid id"),
    (b'{"v":1,"dev":"d","kind":"k","store":"s","boot":"b","seq":0,'
     b'"ts":"2026-01-01T00:00:00Z","type":"a.b","prio":0,"body":{}}', "positive"),
    (b'{"v":1,"dev":"d","kind":"k","store":"s","boot":"b","seq":1,'
     b'"ts":"yesterday","type":"a.b","prio":0,"body":{}}', "RFC 3339"),
    (b'{"v":1,"dev":"d","kind":"k","store":"s","boot":"b","seq":1,'
     b'"ts":"2026-01-01T00:00:00Z","type":"a.b","prio":0,"body":{},"x":1}', "unknown keys"),
    (b"\xff\xfe", "malformed"),
])
def test_bad_envelopes_say_why(doc, words):
    with pytest.raises(EventError) as info:
        Envelope.from_json(doc)
    assert words in str(info.value)


def test_body_validation():
    validate_body("sim.counter", {"n": 3})
    for bad in ({"n": "3"}, {}, {"n": 1, "extra": 2}, {"n": True}):
        with pytest.raises(EventError):
            validate_body("sim.counter", bad)
