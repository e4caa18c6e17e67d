"""Credential format: round trip, size, and hypothesis fuzzing of the parser through the whole
door (random text, random bytes, truncation, oversize, wrong version, bit flips): always a
denial with a reason, never an exception escaping, never an unlock."""
from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from storeedge.credential import (CredentialSpec, MAX_TEXT_CHARS, VERSION,
                                                     encode_payload, generate_signing_key, issue,
                                                     parse)
from storeedge.exc import CredentialFormatError
from storeedge.firmware.dock_door.verify import Reason

from helpers.door_rig import T0, make_rig

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
LONG_FUZZ = settings(max_examples=5000, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
KEY = generate_signing_key(1)
SPEC = CredentialSpec(store="s0042", door="door-1", vendor="ACME Foods", driver="D. Rivera",
                      po="PO-12345", not_before=int(T0 - 600), not_after=int(T0 + 3600))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def raw_of(text: str) -> bytes:
    body = text.split(".", 1)[1]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def test_round_trip_every_field():
    spec = CredentialSpec(store="s0042", door="door-1", vendor="Frische Wäre GmbH", driver="Zoë",
                          po="PO-1/äpfel", not_before=1, not_after=2**32 - 1, uses=255,
                          cred_id=bytes(range(12)))
    c = parse(issue(KEY, spec))
    assert (c.store, c.door, c.vendor, c.driver, c.po) == ("s0042", "door-1", "Frische Wäre GmbH",
                                                          "Zoë", "PO-1/äpfel")
    assert (c.not_before, c.not_after, c.uses, c.key_id) == (1, 2**32 - 1, 255, 1)
    assert c.cred_hex == bytes(range(12)).hex() and c.version == VERSION


def test_text_is_url_safe_and_compact():
    text = issue(KEY, SPEC)
    assert text.startswith("SED1.")
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(text) < 200


@pytest.mark.parametrize("kw", [dict(uses=0), dict(uses=256), dict(not_before=5, not_after=5),
                                dict(po="x" * 65), dict(door=""), dict(cred_id=b"short")])
def test_issue_refuses_bad_specs(kw):
    base = dict(SPEC.__dict__)
    base.update(kw)
    with pytest.raises(ValueError):
        encode_payload(CredentialSpec(**base), 1)


def test_parse_rejects_trailing_bytes_and_noncanonical_base64():
    text = issue(KEY, SPEC)
    raw = raw_of(text)
    payload, sig = raw[:-64], raw[-64:]
    with pytest.raises(CredentialFormatError, match="extra bytes"):
        parse("SED1." + b64(payload + b"\x00" + sig))
    # set an unused low bit of the last base64 character: same bytes, different text
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for extra in (b"", b"x", b"xy"):
        t = issue(KEY, CredentialSpec(**dict(SPEC.__dict__, po="PO-1" + extra.decode())))
        if len(raw_of(t)) % 3:
            break
    last = alphabet[alphabet.index(t[-1]) ^ 1]
    assert base64.urlsafe_b64decode(t[5:-1] + last + "==")  # decodes to the same bytes ...
    with pytest.raises(CredentialFormatError, match="canonical"):
        parse(t[:-1] + last)                                 # ... but is refused


@pytest.fixture
def door(tmp_path):
    rig = make_rig(tmp_path)
    rig.ctl.repeat_s = 0.0
    rig.ctl.p.throttle.free = 10**9          # fuzzing must not be blocked by the throttle
    yield rig
    rig.ctl.close()
    rig.ctl.p.state.close()


def check_denied(door, text: str) -> Reason:
    door.clock.advance(0.01)
    d = door.ctl.present(text, source="fuzz")
    assert d is not None and not d.granted and d.reason != Reason.GRANTED and d.detail
    assert not door.unlocked
    return d.reason


@FUZZ
@given(text=st.text(max_size=800))
def test_fuzz_random_text(door, text):
    check_denied(door, text)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_fuzz_random_bytes_with_valid_prefix(door, raw):
    reason = check_denied(door, "SED1." + b64(raw))
    assert reason in (Reason.MALFORMED, Reason.UNSUPPORTED_VERSION, Reason.UNKNOWN_KEY,
                      Reason.BAD_SIGNATURE)


@FUZZ
@given(data=st.data())
def test_fuzz_truncated_and_bitflipped_real_credential(door, data):
    raw = bytearray(raw_of(issue(KEY, SPEC)))
    cut = data.draw(st.integers(0, len(raw)))
    flips = data.draw(st.lists(st.integers(0, len(raw) * 8 - 1), min_size=1, max_size=4,
                               unique=True))
    for bit in flips:
        raw[bit // 8] ^= 1 << (bit % 8)
    for candidate in (raw[:cut], raw):
        check_denied(door, "SED1." + b64(bytes(candidate)))


@FUZZ
@given(version=st.integers(0, 10**6).filter(lambda v: v != VERSION), junk=st.text(max_size=50))
def test_fuzz_wrong_versions(door, version, junk):
    body = issue(KEY, SPEC).split(".", 1)[1]
    assert check_denied(door, f"SED{version}.{body}") == Reason.UNSUPPORTED_VERSION
    check_denied(door, f"SED{version}.{junk}")


def test_oversized_text_refused_before_decoding(door):
    huge = "SED1." + "A" * (MAX_TEXT_CHARS * 50)
    assert check_denied(door, huge) == Reason.MALFORMED
    assert "characters" in door.last("door.denied").body["detail"]


def test_payload_version_byte_must_match_prefix(door):
    raw = bytearray(raw_of(issue(KEY, SPEC)))
    raw[0] = 2
    assert check_denied(door, "SED1." + b64(bytes(raw))) == Reason.UNSUPPORTED_VERSION


@pytest.mark.slow
@LONG_FUZZ
@given(raw=st.binary(max_size=600), prefix=st.sampled_from(["SED1.", "SED01.", "SED1..", ""]))
def test_fuzz_long_run(door, raw, prefix):
    check_denied(door, prefix + b64(raw))
