"""Audit hash chain: the store server's view (verify_chain) of removed/altered/reordered events,
including a round trip through the real common outbox and envelope JSON."""
from __future__ import annotations

import copy
import json

from storeedge.events import REGISTRY, Envelope, validate_body
from storeedge.firmware.common.outbox import Identity, Outbox
from storeedge.settings import OutboxSection
from storeedge.audit import ChainEvent, verify_chain
from storeedge.firmware.dock_door.events import event_from_body

from helpers.door_rig import make_rig


def busy_day(rig):
    """Grant + passage, a denial, a forced opening, a reset: a dozen chained events."""
    rig.ctl.present(rig.issue())
    rig.advance(2); rig.open_door(); rig.advance(5); rig.close_door()
    rig.clock.advance(5)
    rig.ctl.present("garbage")
    rig.open_door(); rig.close_door()
    rig.ctl.reset_lockout("console:alice", "checked")


def as_events(rig):
    return [ChainEvent("door-1", r.type, copy.deepcopy(r.body)) for r in rig.records]


def test_intact_chain_is_ok(rig):
    busy_day(rig)
    evs = as_events(rig)
    assert len(evs) >= 10
    report = verify_chain(evs, expected_first=None)
    assert report.ok, report.summary()
    assert report.checked == len(evs)


def test_full_chain_from_boot_starts_at_zero(rig):
    busy_day(rig)
    every = rig.ctl.p.state.recent_audit(1000)
    assert every[0].i == 0 and every[0].type == "door.boot"
    evs = [ChainEvent("door-1", r.type, r.body) for r in every]
    assert verify_chain(evs).ok


def test_removed_event_is_reported(rig):
    busy_day(rig)
    evs = as_events(rig)
    removed = evs.pop(4)
    report = verify_chain(evs, expected_first=None)
    assert not report.ok
    assert report.missing == [removed.body["chain"]["i"]]
    assert "missing" in report.summary()


def test_removed_tail_needs_expected_last(rig):
    busy_day(rig)
    evs = as_events(rig)
    last_i = evs[-1].body["chain"]["i"]
    assert verify_chain(evs[:-1], expected_first=None).ok          # undetectable alone
    report = verify_chain(evs[:-1], expected_first=None, expected_last=last_i)
    assert report.missing == [last_i]


def test_altered_event_is_reported(rig):
    busy_day(rig)
    evs = as_events(rig)
    k = next(j for j, e in enumerate(evs) if e.type == "door.denied")
    evs[k].body["reason"] = "granted"
    report = verify_chain(evs, expected_first=None)
    assert report.altered == [evs[k].body["chain"]["i"]]


def test_replaced_event_with_recomputed_hash_breaks_the_link(rig):
    from storeedge.audit import make_link
    busy_day(rig)
    evs = as_events(rig)
    k = next(j for j, e in enumerate(evs) if e.type == "door.forced_open")
    ev = evs[k]
    ev.body["open_s"] = 0.0
    c = ev.body["chain"]
    forged_prev = "00" * 32                   # attacker without the previous hash
    link = make_link("door-1", c["i"], forged_prev, ev.type, c["t"], ev.body)
    ev.body["chain"] = {"i": link.i, "prev": link.prev, "h": link.h, "t": link.t}
    report = verify_chain(evs, expected_first=None)
    assert c["i"] in report.broken and c["i"] + 1 in report.broken


def test_duplicates_and_order_do_not_matter(rig):
    busy_day(rig)
    evs = as_events(rig)
    shuffled = list(reversed(evs)) + evs[:3]
    report = verify_chain(shuffled, expected_first=None)
    assert report.ok and report.duplicates == 3


def test_conflicting_events_for_one_index(rig):
    busy_day(rig)
    evs = as_events(rig)
    twin = copy.deepcopy(evs[2])
    twin.body["cause"] = "other"
    report = verify_chain(evs + [twin], expected_first=None)
    assert report.conflicts == [evs[2].body["chain"]["i"]]


def test_garbage_input_is_unchained_not_an_exception():
    report = verify_chain([{"dev": "door-1", "type": "door.state", "body": {}}, 42,
                           {"dev": "door-1", "type": "door.x", "body": {"chain": {"i": "a"}}}])
    assert report.unchained == [0, 1, 2] and not report.ok


def test_other_event_types_are_skipped(rig):
    busy_day(rig)
    evs = as_events(rig) + [ChainEvent("door-1", "device.started", {"app": "door"})]
    report = verify_chain(evs, expected_first=None)
    assert report.ok and report.skipped == 1


def test_chain_survives_outbox_and_envelope_json(tmp_path):
    """The hash the door computes is the hash the server recomputes from the envelope JSON."""
    ob = Outbox(OutboxSection(path=str(tmp_path / "outbox.db")),
                Identity("door-1", "dock_door", "s0042"))
    try:
        rig = make_rig(tmp_path)

        def sink(rec):
            rig.records.append(rec)
            ob.append(event_from_body(rec.type, rec.body), ts=rec.t)
        rig.ctl.p.audit.sink = sink
        busy_day(rig)
        envs = [Envelope.from_json(e.to_json()) for e in ob.recent(100)]
    finally:
        ob.close()
    door_envs = [e for e in envs if e.type.startswith("door.")]
    assert [e.type for e in door_envs] == [r.type for r in rig.records]
    assert verify_chain(envs, expected_first=None).ok        # with the device.* events too
    assert len(door_envs) == len(rig.records)
    for e in door_envs:
        validate_body(e.type, e.body)
        assert e.prio == REGISTRY[e.type].prio
    assert verify_chain(door_envs, expected_first=None).ok
    tampered = [Envelope.from_json(json.dumps(dict(json.loads(e.to_json()), body=dict(
        e.body, vendor="EVIL") if e.type == "door.granted" else e.body)).encode())
        for e in door_envs]
    assert not verify_chain(tampered, expected_first=None).ok
