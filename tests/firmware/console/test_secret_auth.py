"""Technician secret (scrypt hash only) and lockout with growing back-off."""
from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest

from storeedge.drivers.clock import SimulatedClock
from storeedge.firmware.console.auth import Authenticator, LockoutPolicy, Outcome
from storeedge.firmware.console.exc import SecretError
from storeedge.firmware.console.secret import (hash_secret, parse_hash, read_secret_file,
                                               verify_secret, write_secret_file)

CHEAP = dict(n=2 ** 10, r=8, p=1)


def test_default_hash_is_real_scrypt_with_salt():
    stored = hash_secret("correct horse")
    parsed = parse_hash(stored)
    assert (parsed.n, parsed.r, parsed.p) == (2 ** 14, 8, 1)
    expected = hashlib.scrypt(b"correct horse", salt=parsed.salt, n=2 ** 14, r=8, p=1,
                              maxmem=256 * 2 ** 20, dklen=32)
    assert parsed.key == expected
    assert "correct horse" not in stored
    assert hash_secret("correct horse") != stored          # fresh salt every time
    assert verify_secret("correct horse", parsed)
    assert not verify_secret("correct horsf", parsed)


def test_short_secret_refused():
    with pytest.raises(SecretError, match="at least 8"):
        hash_secret("short")


@pytest.mark.parametrize("text", [
    "", "plain-password", "scrypt$16384$8$1$!!!$AAAA",
    "scrypt$1000$8$1$" + base64.b64encode(b"s").decode() + "$" + base64.b64encode(b"k" * 32).decode(),
    "bcrypt$1$2$3$4$5",
])
def test_malformed_hash_refused(text):
    with pytest.raises(SecretError):
        parse_hash(text)


def test_secret_file_is_private_and_holds_only_the_hash(tmp_path):
    path = tmp_path / "console.secret"
    write_secret_file(path, "bench-secret-42", **CHEAP)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert "bench-secret-42" not in text and text.startswith("scrypt$1024$8$1$")
    assert verify_secret("bench-secret-42", read_secret_file(path))


def test_missing_secret_file_says_so(tmp_path):
    with pytest.raises(SecretError, match="cannot read technician secret file"):
        read_secret_file(tmp_path / "nope")


@pytest.fixture
def auth():
    clock = SimulatedClock()
    stored = parse_hash(hash_secret("bench-secret-42", **CHEAP))
    return Authenticator(stored, clock, LockoutPolicy(max_failures=3, base_s=30, max_s=120)), clock


def test_back_off_grows_and_is_capped(auth):
    a, clock = auth
    assert a.attempt("wrong-1").outcome is Outcome.BAD
    assert a.attempt("wrong-2").outcome is Outcome.BAD
    waits = []
    for _ in range(4):
        r = a.attempt("wrong")
        assert r.outcome is Outcome.LOCKED
        waits.append(r.locked_for_s)
        clock.advance(r.locked_for_s)
    assert waits == [30, 60, 120, 120]


def test_locked_attempts_are_not_checked_even_if_right(auth):
    a, clock = auth
    for _ in range(3):
        a.attempt("wrong")
    clock.advance(29)
    r = a.attempt("bench-secret-42")
    assert r.outcome is Outcome.REFUSED and r.locked_for_s == pytest.approx(1)
    clock.advance(1)
    assert a.attempt("bench-secret-42").outcome is Outcome.OK
    assert a.failures == 0 and a.attempt("wrong").outcome is Outcome.BAD   # count was reset
