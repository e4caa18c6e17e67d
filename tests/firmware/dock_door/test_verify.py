"""Every denial reason, with the door staying locked (relay pin read back from the mock pin)."""
from __future__ import annotations

import base64

import pytest

from storeedge.credential import generate_signing_key
from storeedge.doorkeys import RevocationList, sign_revocations
from storeedge.firmware.dock_door.verify import EARLIEST_SANE_TIME, Reason

from helpers.door_rig import T0, make_rig


def assert_denied(rig, text, reason: Reason):
    d = rig.ctl.present(text)
    assert d is not None and not d.granted
    assert d.reason == reason, d.detail
    assert d.detail
    assert not rig.unlocked
    assert rig.ctl.status().state == "locked"
    ev = rig.last("door.denied")
    assert ev.body["reason"] == reason.value
    assert "SED1." not in str(ev.body)          # the QR text itself is never recorded
    return d


def test_valid_code_unlocks_and_records_grant(rig):
    text = rig.issue()
    assert not rig.unlocked
    d = rig.ctl.present(text)
    assert d.granted and d.reason == Reason.GRANTED
    assert rig.unlocked
    assert rig.ctl.status().state == "unlocked"
    g = rig.last("door.granted")
    assert g.body["cred_id"] == d.credential.cred_hex and g.body["use"] == 1
    assert g.body["vendor"] == "ACME Foods"


def test_malformed(rig):
    for text in ["hello", "SED1.", "SED1.!!!", "SED1." + "A" * 40, "https://example.com/x"]:
        rig.clock.advance(5)
        assert_denied(rig, text, Reason.MALFORMED)


def test_unsupported_version(rig):
    text = rig.issue()
    assert_denied(rig, "SED2." + text.split(".", 1)[1], Reason.UNSUPPORTED_VERSION)


def test_unknown_key(rig):
    other = generate_signing_key(7)
    assert_denied(rig, rig.issue(key=other), Reason.UNKNOWN_KEY)


def test_bad_signature_same_key_id(rig):
    impostor = generate_signing_key(rig.key.kid)
    assert_denied(rig, rig.issue(key=impostor), Reason.BAD_SIGNATURE)


def test_bad_signature_tampered_payload(rig):
    text = rig.issue(po="PO-1")
    raw = bytearray(base64.urlsafe_b64decode(text[5:] + "=" * (-len(text[5:]) % 4)))
    raw[-64 - 1] ^= 0x01                       # last byte of the PO field: PO-1 -> PO-0
    forged = "SED1." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert_denied(rig, forged, Reason.BAD_SIGNATURE)


@pytest.mark.parametrize("field,value", [("door", "door-2"), ("store", "s0043")])
def test_wrong_door(rig, field, value):
    assert_denied(rig, rig.issue(**{field: value}), Reason.WRONG_DOOR)


def test_not_yet_valid_and_skew(rig):
    early = rig.issue(not_before=int(T0 + 600), not_after=int(T0 + 4000))
    assert_denied(rig, early, Reason.NOT_YET_VALID)
    within_skew = rig.issue(not_before=int(T0 + 60), not_after=int(T0 + 4000))
    assert rig.ctl.present(within_skew).granted


def test_expired_and_skew(rig):
    assert_denied(rig, rig.issue(not_before=int(T0 - 7200), not_after=int(T0 - 300)),
                  Reason.EXPIRED)
    assert rig.ctl.present(rig.issue(not_before=int(T0 - 7200), not_after=int(T0 - 60))).granted


def test_clock_not_set(tmp_path):
    from storeedge.drivers.clock import SimulatedClock
    rig = make_rig(tmp_path, clock=SimulatedClock(start=EARLIEST_SANE_TIME - 86400 * 365))
    assert_denied(rig, rig.issue(), Reason.CLOCK_NOT_SET)


def test_revoked_credential(rig):
    text = rig.issue()
    from storeedge.credential import parse
    rl = RevocationList("s0042", serial=1, issued=int(T0), creds=frozenset({parse(text).cred_id}))
    rig.ctl.p.state.apply_revocations(sign_revocations(rig.key, rl), store="s0042")
    assert_denied(rig, text, Reason.REVOKED)


def test_revoked_signing_key(rig):
    k2 = generate_signing_key(2)
    rig.ctl.p.state.trust_key(2, k2.public)
    rl = RevocationList("s0042", serial=1, issued=int(T0), keys=frozenset({2}))
    rig.ctl.p.state.apply_revocations(sign_revocations(rig.key, rl), store="s0042")
    assert_denied(rig, rig.issue(key=k2), Reason.REVOKED)


def test_used_single_use(rig):
    text = rig.issue()
    assert rig.ctl.present(text).granted
    rig.open_door(); rig.close_door()
    assert not rig.unlocked
    rig.clock.advance(10)                  # past the repeat window
    assert_denied(rig, text, Reason.USED)


def test_multi_use_credential_counts(rig):
    text = rig.issue(uses=2)
    assert rig.ctl.present(text).granted
    rig.open_door(); rig.close_door()
    rig.clock.advance(10)
    d = rig.ctl.present(text)
    assert d.granted and rig.last("door.granted").body["use"] == 2
    rig.open_door(); rig.close_door()
    rig.clock.advance(10)
    assert_denied(rig, text, Reason.USED)


def test_repeated_frames_are_ignored_not_denied(rig):
    text = rig.issue()
    assert rig.ctl.present(text).granted
    n = len(rig.records)
    for _ in range(5):
        rig.clock.advance(0.1)
        assert rig.ctl.present(text) is None
    assert len(rig.records) == n


def test_throttle_grows_and_blocks_valid_code(rig):
    bad = [rig.issue(door="door-9", po=f"PO-{i}") for i in range(8)]
    reasons = []
    for text in bad[:4]:
        reasons.append(rig.ctl.present(text).reason)
    assert reasons == [Reason.WRONG_DOOR] * 4           # 4th failure starts a 5 s block
    assert_denied(rig, rig.issue(), Reason.THROTTLED)   # even a good code waits
    rig.clock.advance(5.1)
    assert rig.ctl.present(bad[4]).reason == Reason.WRONG_DOOR   # 5th failure: 10 s block
    rig.clock.advance(5.1)
    assert_denied(rig, rig.issue(po="x"), Reason.THROTTLED)
    rig.clock.advance(5.1)
    good = rig.issue(po="y")
    assert rig.ctl.present(good).granted                # block over; grant resets the count
    assert rig.ctl.p.throttle.status(rig.clock.monotonic()).failures == 0


def test_throttled_code_is_not_consumed(rig):
    for i in range(4):
        rig.ctl.present(rig.issue(door="door-9", po=str(i)))
    text = rig.issue()
    assert_denied(rig, text, Reason.THROTTLED)
    rig.clock.advance(6)
    assert rig.ctl.present(text).granted


def test_lockout_denies_without_consuming(rig):
    rig.open_door()                                     # forced open -> lockout
    rig.close_door()
    text = rig.issue()
    assert_denied(rig, text, Reason.LOCKOUT)
    assert rig.ctl.reset_lockout("console:alice", "checked the door").ok
    rig.clock.advance(10)
    assert rig.ctl.present(text).granted


def test_jammed_denies(rig):
    rig.ctl.p.logic.relay_fault("test: relay stuck")
    rig.ctl.tick()
    d = rig.ctl.present(rig.issue())
    assert not d.granted and d.reason == Reason.JAMMED and not rig.unlocked
    assert rig.ctl.status().state == "jammed"
    assert rig.last("door.denied").body["reason"] == "jammed"


def test_wall_clock_jump_changes_window_not_timers(rig):
    """NTP corrects the wall clock: windows follow wall time, door timers monotonic time."""
    text = rig.issue(not_before=int(T0 - 600), not_after=int(T0 + 600))
    rig.clock.set_time(T0 + 3600)                   # wall clock jumps an hour ahead
    assert_denied(rig, text, Reason.EXPIRED)
    rig.clock.set_time(T0)
    rig.clock.advance(5)
    assert rig.ctl.present(text).granted
    rig.clock.set_time(T0 + 86400)                  # jump during the unlock time
    rig.advance(9)
    assert rig.unlocked                             # unlock_s is monotonic: still open
    rig.advance(1.5)
    assert not rig.unlocked
