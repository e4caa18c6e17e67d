"""End-to-end event seals: a device authenticates its own envelopes for the store server.

The device appends ``,"seal":"<64 hex>"`` as the last member of its compact envelope JSON;
the seal is ``HMAC-SHA256(key, envelope bytes without that member)`` -- byte-exact, no
canonicalisation.  ``key`` is the device's 32-byte ``security.e2e_key``; the store server
derives the same key from ``security.e2e_master`` (:func:`storeedge.pki.derive_e2e_key`).
The gateway holds no device key: it can delay an event but cannot alter, reorder or invent
one without the store server noticing.

    sealed = seal(key, b'{"v":1,...,"body":{...}}')
    # b'{"v":1,...,"body":{...},"seal":"9f2c..."}'
    verify(key, sealed)  ->  Verdict.OK / BAD / UNSEALED
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
from enum import Enum

from storeedge.exc import SealKeyError

KEY_BYTES = 32
_PREFIX = b',"seal":"'
MAC_HEX = 64
SUFFIX_BYTES = len(_PREFIX) + MAC_HEX + 2          # ,"seal":"<64 hex>"}
_HEX = frozenset(b"0123456789abcdef")


class Verdict(str, Enum):
    """Outcome of checking a sealed payload (values are the store server's reject reasons)."""

    OK = "ok"
    BAD = "bad_seal"
    UNSEALED = "unsealed"


def seal(key: bytes, payload: bytes) -> bytes:
    """``payload`` (a compact JSON object ending in ``}``) with its seal as the last member."""
    mac = hmac.digest(key, payload, "sha256").hex().encode("ascii")
    return b"".join((payload[:-1], _PREFIX, mac, b'"}'))


def split(payload: bytes) -> tuple[bytes, bytes] | None:
    """``(sealed-over bytes, mac hex)`` if ``payload`` ends with a well-formed seal, else None."""
    if len(payload) <= SUFFIX_BYTES or not payload.endswith(b'"}'):
        return None
    cut = len(payload) - SUFFIX_BYTES
    if payload[cut:cut + len(_PREFIX)] != _PREFIX:
        return None
    mac = payload[cut + len(_PREFIX):-2]
    if not _HEX.issuperset(mac):
        return None
    return payload[:cut] + b"}", bytes(mac)


def verify(key: bytes, payload: bytes) -> Verdict:
    """Check the seal of ``payload`` (whose envelope has a ``seal`` member) with ``key``.

    A seal that is not the last member in the exact form above is :attr:`Verdict.BAD`.
    Constant-time compare.
    """
    cut = len(payload) - SUFFIX_BYTES
    if (cut <= 0 or payload[cut:cut + len(_PREFIX)] != _PREFIX
            or payload[-2:] != b'"}'):
        return Verdict.BAD
    expect = hmac.digest(key, payload[:cut] + b"}", "sha256").hex().encode("ascii")
    mac = payload[cut + len(_PREFIX):-2]          # non-hex bytes simply do not compare equal
    return Verdict.OK if hmac.compare_digest(expect, mac) else Verdict.BAD


def load_key(path: str) -> bytes:
    """A 32-byte key file (``storeedge pki enrol`` writes one per device, mode 0600).

    Raises:
        SealKeyError: the file is missing, unreadable, group/world-readable, or not 32 bytes.
    """
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            key = fh.read(KEY_BYTES + 1)
    except OSError as exc:
        raise SealKeyError(f"cannot read end-to-end key {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SealKeyError(f"end-to-end key {path} is readable by others "
                           f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it")
    if len(key) != KEY_BYTES:
        raise SealKeyError(f"end-to-end key {path} must hold exactly {KEY_BYTES} bytes")
    return key


class KeyRing:
    """Every device's key, derived on first use from the store's master secret.

    Args:
        master: the store's ``security.e2e_master`` secret (bytes).
    """

    def __init__(self, master: bytes):
        from storeedge.pki import derive_e2e_key   # (cryptography: not on a device's path)

        self._derive = derive_e2e_key
        self._master = master
        self._keys: dict[tuple[str, str], bytes] = {}

    def key(self, store: str, dev: str) -> bytes:
        """The 32-byte key of device ``dev`` in ``store``."""
        found = self._keys.get((store, dev))
        if found is None:
            if len(self._keys) > 100_000:      # bounded: ids come from the network
                self._keys.clear()
            found = self._keys[(store, dev)] = self._derive(self._master, store, dev)
        return found

    def verify(self, store: str, dev: str, payload: bytes) -> Verdict:
        """Check ``payload`` as sealed by ``dev`` of ``store``."""
        return verify(self.key(store, dev), payload)


def load_master(path: str) -> bytes:
    """The store's master secret file (at least 32 bytes, mode 0600); see :func:`load_key`."""
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            master = fh.read(4096)
    except OSError as exc:
        raise SealKeyError(f"cannot read end-to-end master {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SealKeyError(f"end-to-end master {path} is readable by others "
                           f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it")
    if len(master) < KEY_BYTES:
        raise SealKeyError(f"end-to-end master {path} must hold at least {KEY_BYTES} bytes")
    return master
