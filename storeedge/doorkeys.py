"""Key files and signed documents (revocation lists) shared by the store server and the door.

* Private signing key: PKCS#8 PEM, written atomically with mode 0600.  The key id is kept in
  a ``storeedge-kid`` header line before the PEM block.
* Public key: one line ``sedpub1:<kid>:<base64url of the 32-byte Ed25519 key>`` (easy to paste
  into a config file or a console).
* Key announcement (rotation): JSON ``{"format": "sedkeys1", "kid", "body", "sig"}`` where
  ``body`` is ``{"store", "serial", "keys": {"<kid>": "<b64url public>"}}``, signed by a key
  the door already trusts; the door adds the announced keys (retire old ones by revoking them).
* Revocation list: JSON ``{"format": "sedrev1", "kid": n, "body": b64url, "sig": b64url}``
  where ``body`` is compact JSON ``{"store", "serial", "issued", "creds": [hex], "keys": [kid]}``
  signed with ``REVOCATION_CONTEXT + body``.  Each list is complete (not a delta) and carries
  a serial that must increase, so an old list cannot be replayed to un-revoke a code.
"""
from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storeedge.credential import CRED_ID_LEN, SigningKey
from storeedge.exc import KeyFileError, RevocationListError
REVOCATION_CONTEXT = b"storeedge-door-revocations-v1\x00"
KEYSET_CONTEXT = b"storeedge-door-keyset-v1\x00"
_PUB_RE = re.compile(r"sedpub1:(\d{1,5}):([A-Za-z0-9_-]{43})")
_KID_RE = re.compile(rb"storeedge-kid: (\d{1,5})\n")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so a power cut leaves the old or the new file, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def public_key_line(kid: int, public: Ed25519PublicKey) -> str:
    """``sedpub1:<kid>:<b64url>`` for ``public``."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"sedpub1:{kid}:{b64url(raw)}"


def parse_public_key_line(line: str) -> tuple[int, Ed25519PublicKey]:
    """(kid, key) from a ``sedpub1:`` line; raises :class:`KeyFileError`."""
    m = _PUB_RE.fullmatch(line.strip())
    if not m or int(m.group(1)) > 0xFFFF:
        raise KeyFileError(f"not a public key line (expected sedpub1:<kid>:<43 chars>): {line!r}")
    return int(m.group(1)), Ed25519PublicKey.from_public_bytes(unb64url(m.group(2)))


def save_signing_key(path: str | os.PathLike, key: SigningKey) -> None:
    """Write ``key`` as PEM with a key-id header, mode 0600, atomically."""
    pem = key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    write_atomic(path, f"storeedge-kid: {key.kid}\n".encode() + pem, mode=0o600)


def load_signing_key(path: str | os.PathLike) -> SigningKey:
    """Read a key written by :func:`save_signing_key`; raises :class:`KeyFileError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read signing key {path}: {exc}") from exc
    m = _KID_RE.match(data)
    if not m:
        raise KeyFileError(f"{path}: missing 'storeedge-kid: N' header line")
    try:
        private = serialization.load_pem_private_key(data[m.end():], password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM private key: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return SigningKey(int(m.group(1)), private)


@dataclass(frozen=True)
class RevocationList:
    """A complete revocation list for one store (``serial`` increases with every list)."""

    store: str
    serial: int
    issued: int
    creds: frozenset[bytes] = field(default_factory=frozenset)
    keys: frozenset[int] = field(default_factory=frozenset)

    def body(self) -> bytes:
        doc = {"store": self.store, "serial": self.serial, "issued": self.issued,
               "creds": sorted(c.hex() for c in self.creds), "keys": sorted(self.keys)}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sign_revocations(key: SigningKey, rl: RevocationList) -> bytes:
    """The signed revocation-list document (JSON bytes) for ``rl``."""
    body = rl.body()
    sig = key.private.sign(REVOCATION_CONTEXT + body)
    doc = {"format": "sedrev1", "kid": key.kid, "body": b64url(body), "sig": b64url(sig)}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def read_signed_revocations(data: bytes) -> tuple[int, bytes, bytes]:
    """(kid, body, signature) from a document; raises :class:`RevocationListError`."""
    try:
        doc = json.loads(data)
        if doc.get("format") != "sedrev1":
            raise RevocationListError("not a revocation list (format is not sedrev1)")
        return int(doc["kid"]), unb64url(doc["body"]), unb64url(doc["sig"])
    except RevocationListError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RevocationListError(f"malformed revocation list: {exc}") from exc


def verify_revocations(data: bytes, public: Ed25519PublicKey) -> RevocationList:
    """Check the signature of a document and decode it; raises :class:`RevocationListError`."""
    _kid, body, sig = read_signed_revocations(data)
    try:
        public.verify(sig, REVOCATION_CONTEXT + body)
    except InvalidSignature:
        raise RevocationListError("revocation list signature is not valid") from None
    try:
        doc = json.loads(body)
        creds = frozenset(bytes.fromhex(c) for c in doc["creds"])
        keys = frozenset(int(k) for k in doc["keys"])
        rl = RevocationList(str(doc["store"]), int(doc["serial"]), int(doc["issued"]), creds, keys)
    except (ValueError, KeyError, TypeError) as exc:
        raise RevocationListError(f"malformed revocation list body: {exc}") from exc
    if any(len(c) != CRED_ID_LEN for c in creds):
        raise RevocationListError("revocation list holds a credential id of the wrong length")
    return rl


@dataclass(frozen=True)
class KeyAnnouncement:
    """New store keys for the doors of ``store`` (``serial`` increases with every one)."""

    store: str
    serial: int
    keys: dict = field(default_factory=dict)      # kid -> Ed25519PublicKey

    def body(self) -> bytes:
        keys = {str(kid): public_key_line(kid, pub).split(":", 2)[2]
                for kid, pub in sorted(self.keys.items())}
        doc = {"store": self.store, "serial": self.serial, "keys": keys}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sign_keyset(key: SigningKey, ann: KeyAnnouncement) -> bytes:
    """The signed key announcement document (JSON bytes)."""
    body = ann.body()
    sig = key.private.sign(KEYSET_CONTEXT + body)
    doc = {"format": "sedkeys1", "kid": key.kid, "body": b64url(body), "sig": b64url(sig)}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def read_signed_keyset(data: bytes) -> tuple[int, bytes, bytes]:
    """(signer kid, body, signature); raises :class:`KeyFileError`."""
    try:
        doc = json.loads(data)
        if doc.get("format") != "sedkeys1":
            raise KeyFileError("not a key announcement (format is not sedkeys1)")
        return int(doc["kid"]), unb64url(doc["body"]), unb64url(doc["sig"])
    except KeyFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"malformed key announcement: {exc}") from exc


def verify_keyset(data: bytes, public: Ed25519PublicKey) -> KeyAnnouncement:
    """Check the signature and decode; raises :class:`KeyFileError`."""
    _kid, body, sig = read_signed_keyset(data)
    try:
        public.verify(sig, KEYSET_CONTEXT + body)
    except InvalidSignature:
        raise KeyFileError("key announcement signature is not valid") from None
    try:
        doc = json.loads(body)
        keys = {}
        for kid, b64 in doc["keys"].items():
            keys[int(kid)] = parse_public_key_line(f"sedpub1:{int(kid)}:{b64}")[1]
        return KeyAnnouncement(str(doc["store"]), int(doc["serial"]), keys)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"malformed key announcement body: {exc}") from exc
