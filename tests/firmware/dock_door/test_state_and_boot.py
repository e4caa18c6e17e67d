"""Durable state (keys, revocations, used ids, pending audit) across reopen, and the boot rule:
the relay is at its locked level before any other initialisation."""
from __future__ import annotations

import os
import sqlite3

import pytest

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.credential import generate_signing_key, parse
from storeedge.firmware.dock_door.exc import StateStoreError
from storeedge.exc import RevocationListError
from storeedge.doorkeys import (RevocationList, load_signing_key,
                                               parse_public_key_line, public_key_line,
                                               save_signing_key, sign_revocations)
from storeedge.firmware.dock_door.runtime import DoorOptions, DoorSeams, build_door
from storeedge.firmware.dock_door.store import DoorStateStore
from storeedge.firmware.dock_door.verify import Reason

from helpers.door_rig import RELAY, T0, make_rig, wiring


def reopen(rig, tmp_path):
    """Simulate a reboot: drop the controller, build a new one on the same state file."""
    rig.ctl.close(); rig.ctl.p.relay.close(); rig.ctl.p.state.close()
    return make_rig(tmp_path, key=rig.key)


def test_used_credential_survives_reboot(tmp_path):
    rig = make_rig(tmp_path)
    text = rig.issue()
    assert rig.ctl.present(text).granted
    rig2 = reopen(rig, tmp_path)
    assert rig2.ctl.present(text).reason == Reason.USED
    assert not rig2.unlocked


def test_keys_and_revocations_survive_reboot(tmp_path):
    rig = make_rig(tmp_path)
    text = rig.issue()
    rl = RevocationList("s0042", 5, int(T0), creds=frozenset({parse(text).cred_id}))
    rig.ctl.p.state.apply_revocations(sign_revocations(rig.key, rl), store="s0042")
    rig.ctl.p.state.close()
    st = DoorStateStore(tmp_path / "door.db", dev="door-1")
    assert st.trusted_kids() == [1] and st.revocation_serial() == 5
    assert st.cred_revoked(parse(text).cred_id)
    st.close()


def test_revocation_list_checks(tmp_path):
    key, other = generate_signing_key(1), generate_signing_key(9)
    st = DoorStateStore(tmp_path / "d.db", dev="door-1")
    st.trust_key(1, key.public)
    rl = RevocationList("s0042", 3, int(T0), creds=frozenset({b"\x01" * 12}))
    with pytest.raises(RevocationListError, match="unknown key"):
        st.apply_revocations(sign_revocations(other, rl), store="s0042")
    forged = sign_revocations(generate_signing_key(1), rl)      # right kid, wrong key
    with pytest.raises(RevocationListError, match="signature"):
        st.apply_revocations(forged, store="s0042")
    with pytest.raises(RevocationListError, match="store"):
        st.apply_revocations(sign_revocations(key, rl), store="s0099")
    with pytest.raises(RevocationListError):
        st.apply_revocations(b"{not json", store="s0042")
    st.apply_revocations(sign_revocations(key, rl), store="s0042")
    older = RevocationList("s0042", 2, int(T0))                # rollback: un-revoke attempt
    with pytest.raises(RevocationListError, match="not newer"):
        st.apply_revocations(sign_revocations(key, older), store="s0042")
    assert st.cred_revoked(b"\x01" * 12)
    newer = RevocationList("s0042", 4, int(T0))                # complete list: replaces
    st.apply_revocations(sign_revocations(key, newer), store="s0042")
    assert not st.cred_revoked(b"\x01" * 12) and st.revocation_serial() == 4
    st.close()


def test_key_files_round_trip(tmp_path):
    key = generate_signing_key(42)
    save_signing_key(tmp_path / "k.pem", key)
    assert oct(os.stat(tmp_path / "k.pem").st_mode & 0o777) == "0o600"
    back = load_signing_key(tmp_path / "k.pem")
    assert back.kid == 42
    line = public_key_line(42, key.public)
    kid, pub = parse_public_key_line(line)
    assert kid == 42 and pub.public_bytes_raw() == key.public.public_bytes_raw()


def test_state_is_synchronous_full_wal(tmp_path):
    st = DoorStateStore(tmp_path / "d.db", dev="door-1")
    assert st._db.execute("PRAGMA synchronous").fetchone()[0] == 2      # FULL
    assert st._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    st.close()


def test_pending_audit_is_replayed_after_crash(tmp_path):
    rig = make_rig(tmp_path)

    def broken_sink(rec):
        raise OSError("outbox gone")
    rig.ctl.p.audit.sink = broken_sink
    rig.ctl.present("not a code")                  # chained, but never reached the outbox
    pending = rig.ctl.p.state.pending_audit()
    assert [r.type for r in pending] == ["door.denied"]
    rig2 = reopen(rig, tmp_path)
    assert rig2.ctl.p.state.pending_audit() == []
    boot = [r for r in rig2.ctl.p.state.recent_audit(5) if r.type == "door.boot"][-1]
    assert boot.body["replayed"] == 1


def test_old_used_ids_are_pruned_only_long_after_expiry(tmp_path):
    rig = make_rig(tmp_path)
    text = rig.issue(not_before=int(T0 - 100), not_after=int(T0 + 100))
    assert rig.ctl.present(text).granted
    st = rig.ctl.p.state
    cid = parse(text).cred_id
    assert st.prune_used(T0 + 86400) == 0 and st.uses(cid) == 1
    # a clock that jumps 8 days ahead (no high-water mark there yet) prunes nothing ...
    assert st.prune_used(T0 + 8 * 86400) == 0 and st.uses(cid) == 1
    # ... a door that has lived through those 8 days (its mark is there) does
    st.advance_clock_hwm(T0 + 8 * 86400)
    assert st.prune_used(T0 + 8 * 86400) == 1 and st.uses(cid) == 0


def _boot_observed(tmp_path, monkeypatch, fail_safe: bool):
    """Build a door, recording the relay pin at the moment the *next* thing (the state store)
    starts initialising; that constructor then fails like a broken SD card would."""
    from storeedge.firmware.dock_door import runtime
    factory = new_mock_factory()
    pin = factory.pin(RELAY)
    assert pin.function == "input"                  # floating before the app starts
    seen = {}

    class ObservedStore(DoorStateStore):
        def __init__(self, *a, **kw):
            seen.update(function=pin.function, state=pin.state,
                        history=[s.state for s in pin.states])
            raise StateStoreError("simulated: state partition unreadable")
    monkeypatch.setattr(runtime, "DoorStateStore", ObservedStore)
    opts = DoorOptions(store="s0042", door="door-1", state_path=str(tmp_path / "door.db"),
                       wiring=wiring(fail_safe=fail_safe))
    with pytest.raises(StateStoreError):
        build_door(opts, SimulatedClock(start=T0), DoorSeams(sink=list().append,
                                                             pin_factory=factory))
    return seen


def test_relay_locked_before_anything_else_fail_secure(tmp_path, monkeypatch):
    seen = _boot_observed(tmp_path, monkeypatch, fail_safe=False)
    assert seen["function"] == "output" and seen["state"] is False   # de-energised = locked
    assert seen["history"] == [False]                                # never pulsed


def test_relay_locked_before_anything_else_fail_safe_maglock(tmp_path, monkeypatch):
    seen = _boot_observed(tmp_path, monkeypatch, fail_safe=True)
    assert seen["function"] == "output" and seen["state"] is True    # energised = locked
    assert seen["history"] == [False, True]                          # input -> locked output


def test_failed_boot_keeps_the_callers_relay_locked(tmp_path):
    from storeedge.firmware.dock_door.hardware import build_relay
    factory = new_mock_factory()
    relay = build_relay(wiring().relay, pin_factory=factory)        # main builds it first
    opts = DoorOptions(store="s0042", door="door-1",
                       state_path=str(tmp_path / "missing" / "door.db"), wiring=wiring())
    with pytest.raises(StateStoreError):
        build_door(opts, SimulatedClock(start=T0), DoorSeams(sink=list().append,
                                                             pin_factory=factory), relay=relay)
    assert factory.pin(RELAY).function == "output" and not relay.unlocked


def test_active_low_relay_board(tmp_path):
    from storeedge.firmware.dock_door.hardware import RelayWiring, build_relay
    factory = new_mock_factory()
    relay = build_relay(RelayWiring(5, active_high=False), pin_factory=factory)
    assert factory.pin(5).state is True and not relay.unlocked     # high = coil off = locked
    relay.unlock()
    assert factory.pin(5).state is False and relay.unlocked
    relay.close()
    assert factory.pin(5).function == "input"


def test_corrupt_state_file_is_an_error_not_a_wipe(tmp_path):
    path = tmp_path / "door.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateStoreError):
        DoorStateStore(path, dev="door-1")
    assert path.read_bytes().startswith(b"this is not sqlite")       # kept for salvage
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT 1 FROM used").fetchall()


def test_state_failure_while_deciding_keeps_door_locked(tmp_path):
    rig = make_rig(tmp_path)
    text = rig.issue()
    rig.ctl.p.state._db.close()                     # the SD card went away
    d = rig.ctl.present(text)
    assert not d.granted and d.reason == Reason.DOOR_ERROR and "state" in d.detail
    assert not rig.unlocked


def test_key_rotation_by_key_id(tmp_path):
    rig = make_rig(tmp_path)
    old_code = rig.issue(po="old")
    k2 = generate_signing_key(2)
    rig.ctl.p.state.trust_key(2, k2.public)
    assert rig.ctl.present(rig.issue(key=k2, po="new")).granted          # new key works
    rig.open_door(); rig.close_door(); rig.clock.advance(5)
    rl = RevocationList("s0042", 1, int(T0), keys=frozenset({1}))        # retire key 1
    rig.ctl.p.state.apply_revocations(sign_revocations(k2, rl), store="s0042")
    d = rig.ctl.present(old_code)
    assert d.reason == Reason.REVOKED and "key 1" in d.detail and not rig.unlocked
