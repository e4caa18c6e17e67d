"""Door credential format: a compact, versioned, Ed25519-signed payload that fits a QR code.

QR text (URL-safe characters only)::

    SED1.<base64url, no padding, of payload || signature>

Payload v1 (big-endian; strings are a 1-byte length then UTF-8):

=========  ======  ============================================================
field      bytes   meaning
=========  ======  ============================================================
version    1       1
key_id     2       id of the store signing key (keys rotate by id)
cred_id    12      random credential id (the unit of single use and revocation)
not_before 4       seconds since the epoch, UTC
not_after  4       seconds since the epoch, UTC
uses       1       allowed uses, 1..255 (1 = single use)
flags      1       reserved, must be 0
store      1+n     store id, e.g. ``s0042``
door       1+n     door device id, e.g. ``door-1``
vendor     1+n     vendor name
driver     1+n     driver name or id
po         1+n     purchase order / appointment reference
=========  ======  ============================================================

The signature (64 bytes) covers ``SIGNING_CONTEXT + payload``.  A typical credential is about
190 characters: a version 9 QR code at error correction M, easy to read from a phone screen.

Example::

    key = generate_signing_key(kid=1)
    text = issue(key, CredentialSpec(store="s0042", door="door-1", vendor="ACME",
                 driver="D. Rivera", po="PO-1234", not_before=t0, not_after=t0 + 3600))
    cred = parse(text)           # raises CredentialFormatError(reason=...) when malformed
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storeedge.exc import CredentialFormatError
PREFIX = "SED"
VERSION = 1
SIGNING_CONTEXT = b"storeedge-door-credential-v1\x00"
CRED_ID_LEN = 12
SIG_LEN = 64
MAX_FIELD_BYTES = 64
MAX_TEXT_CHARS = 600          # longer QR texts are refused before any decoding
_HEADER = struct.Struct(">BH12sIIBB")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_TEXT_FIELDS = ("store", "door", "vendor", "driver", "po")


@dataclass(frozen=True)
class CredentialSpec:
    """What the store server wants a credential to say (input to :func:`issue`).

    ``not_before``/``not_after`` are seconds since the epoch (UTC); ``uses`` is how many times
    the code may open the door (1 = single use); ``cred_id`` is random when None.
    """

    store: str
    door: str
    vendor: str
    driver: str
    po: str
    not_before: int
    not_after: int
    uses: int = 1
    cred_id: bytes | None = None


@dataclass(frozen=True)
class Credential:
    """A parsed credential (signature not yet checked: see :mod:`.verify`).

    Times are integer seconds since the epoch (UTC).  ``payload`` and ``signature`` are the raw
    bytes the signature check needs.
    """

    version: int
    key_id: int
    cred_id: bytes
    not_before: int
    not_after: int
    uses: int
    store: str
    door: str
    vendor: str
    driver: str
    po: str
    payload: bytes
    signature: bytes

    @property
    def cred_hex(self) -> str:
        """The credential id as 24 lowercase hex characters (used in events and revocations)."""
        return self.cred_id.hex()


@dataclass(frozen=True)
class SigningKey:
    """A store signing key: ``kid`` (0..65535) and its Ed25519 private key."""

    kid: int
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def generate_signing_key(kid: int) -> SigningKey:
    """A fresh Ed25519 signing key with id ``kid`` (0..65535)."""
    if not 0 <= kid <= 0xFFFF:
        raise ValueError(f"key id {kid} is outside 0..65535")
    return SigningKey(kid, Ed25519PrivateKey.generate())


def _pack_str(name: str, value: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_FIELD_BYTES:
        raise ValueError(f"{name} is {len(raw)} bytes; at most {MAX_FIELD_BYTES} fit a credential")
    return bytes([len(raw)]) + raw


def encode_payload(spec: CredentialSpec, kid: int) -> bytes:
    """The binary payload for ``spec`` signed by key ``kid`` (checks every field)."""
    cred_id = spec.cred_id if spec.cred_id is not None else os.urandom(CRED_ID_LEN)
    if len(cred_id) != CRED_ID_LEN:
        raise ValueError(f"cred_id must be {CRED_ID_LEN} bytes")
    if not 1 <= spec.uses <= 255:
        raise ValueError(f"uses must be 1..255, not {spec.uses}")
    if not 0 <= spec.not_before < spec.not_after <= 0xFFFFFFFF:
        raise ValueError("need 0 <= not_before < not_after <= 2**32-1 (epoch seconds)")
    if not spec.door or not spec.store:
        raise ValueError("store and door must not be empty")
    head = _HEADER.pack(VERSION, kid, cred_id, int(spec.not_before), int(spec.not_after),
                        spec.uses, 0)
    return head + b"".join(_pack_str(n, getattr(spec, n)) for n in _TEXT_FIELDS)


def issue(key: SigningKey, spec: CredentialSpec) -> str:
    """Sign ``spec`` with ``key`` and return the QR text (``SED1.`` + base64url)."""
    payload = encode_payload(spec, key.kid)
    signature = key.private.sign(SIGNING_CONTEXT + payload)
    body = base64.urlsafe_b64encode(payload + signature).rstrip(b"=").decode("ascii")
    return f"{PREFIX}{VERSION}.{body}"


def _split_text(text: str) -> str:
    """The base64url body of a ``SEDn.`` text; raises with reason malformed/unsupported_version."""
    if len(text) > MAX_TEXT_CHARS:
        raise CredentialFormatError(f"QR text is {len(text)} characters (max {MAX_TEXT_CHARS})")
    prefix, dot, body = text.partition(".")
    if not dot or not prefix.startswith(PREFIX):
        raise CredentialFormatError("not a door credential (expected 'SED<version>.')")
    version = prefix[len(PREFIX):]
    if not version.isdigit() or not version.isascii():
        raise CredentialFormatError("credential version is not a number")
    if int(version) != VERSION:
        raise CredentialFormatError(f"credential version {version} is not supported "
                                    f"(this door reads version {VERSION})", "unsupported_version")
    if not _B64URL.fullmatch(body):
        raise CredentialFormatError("credential body is not base64url")
    return body


def _decode_body(body: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CredentialFormatError(f"credential body is not base64url: {exc}") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
        raise CredentialFormatError("credential body is not canonical base64url")
    return raw


def _read_strings(payload: bytes, offset: int) -> tuple[list[str], int]:
    values = []
    for name in _TEXT_FIELDS:
        if offset >= len(payload):
            raise CredentialFormatError(f"credential is truncated before field {name}")
        n = payload[offset]
        end = offset + 1 + n
        if n > MAX_FIELD_BYTES or end > len(payload):
            raise CredentialFormatError(f"credential field {name} is truncated or too long")
        try:
            values.append(payload[offset + 1:end].decode("utf-8"))
        except UnicodeDecodeError:
            raise CredentialFormatError(f"credential field {name} is not UTF-8") from None
        offset = end
    return values, offset


def parse(text: str) -> Credential:
    """Parse QR ``text`` into a :class:`Credential` without checking the signature.

    Raises :class:`CredentialFormatError` (``.reason`` is ``malformed`` or
    ``unsupported_version``) for anything that is not exactly a v1 credential.
    """
    raw = _decode_body(_split_text(text))
    if len(raw) < _HEADER.size + len(_TEXT_FIELDS) + SIG_LEN:
        raise CredentialFormatError(f"credential is truncated ({len(raw)} bytes)")
    payload, signature = raw[:-SIG_LEN], raw[-SIG_LEN:]
    version, kid, cred_id, nbf, naf, uses, flags = _HEADER.unpack_from(payload)
    if version != VERSION:
        raise CredentialFormatError(f"payload version {version} does not match the prefix",
                                    "unsupported_version")
    if flags != 0 or uses == 0 or nbf >= naf:
        raise CredentialFormatError("credential header is inconsistent (flags/uses/window)")
    strings, end = _read_strings(payload, _HEADER.size)
    if end != len(payload):
        raise CredentialFormatError(f"credential has {len(payload) - end} unexpected extra bytes")
    return Credential(version, kid, cred_id, nbf, naf, uses, *strings, payload=payload,
                      signature=signature)


def signature_valid(cred: Credential, public: Ed25519PublicKey) -> bool:
    """True when ``cred``'s signature was made by ``public``'s private key."""
    try:
        public.verify(cred.signature, SIGNING_CONTEXT + cred.payload)
        return True
    except InvalidSignature:
        return False
