"""Signed commands: the store server signs, a device verifies before acting.

Wire format (the MQTT payload on ``se/v1/{store}/{kind}/{dev}/cmd/{name}``), compact JSON::

    {"v": 1, "cmd": "<base64url of the body bytes>", "sig": "<base64url, 64 bytes>"}

The body is compact JSON with exactly these keys::

    {"id": str, "store": str, "kind": str, "dev": str, "name": str, "args": {...},
     "ctr": int, "exp": int, "by": str, "role": str}

* ``ctr``: the per-device counter; a device acts only on a counter above the highest it has
  seen (kept durably), so a captured command cannot be replayed.
* ``exp``: not-after, epoch seconds (int); a device refuses it once its clock passes it.
* ``by`` / ``role``: the person (or the store server itself) who ordered the command; the
  device records ``by`` from here, never from anything unsigned.

The signature is Ed25519 over ``b"storeedge-cmd-v1\\0" + body`` (domain-separated), made with
the store's ``command.key`` and checked with ``command.pub`` (``storeedge pki init``).
Which commands need which role is declared in :data:`COMMAND_ROLES` (one table).
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from storeedge.exc import CommandRefused, SigningKeyError

DOMAIN = b"storeedge-cmd-v1\x00"
WIRE_VERSION = 1
MAX_PAYLOAD_BYTES = 128 * 1024      # a door revocation list of a few thousand codes fits
MAX_TTL_S = 24 * 3600
DEFAULT_TTL_S = 300
_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_BY_RE = re.compile(r"\w[\w .'@:/+-]{0,63}")      # a person's name or initials
_CMD_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_BODY_KEYS = frozenset({"id", "store", "kind", "dev", "name", "args", "ctr", "exp", "by",
                        "role"})


class Role(str, Enum):
    """Who may sign for a command: a person's role, or the store server itself."""

    ASSOCIATE = "associate"
    MANAGER = "manager"
    TECHNICIAN = "technician"
    STORE_SERVER = "store_server"


class Reason(str, Enum):
    """Why a command was refused (counted per reason on the device)."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    WRONG_DEVICE = "wrong_device"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    UNKNOWN_COMMAND = "unknown_command"
    RATE_LIMITED = "rate_limited"
    QUEUE_FULL = "queue_full"


_PEOPLE = frozenset({Role.ASSOCIATE, Role.MANAGER, Role.TECHNICIAN})
_ANYONE = _PEOPLE | {Role.STORE_SERVER}

#: command name -> roles allowed to sign it.  A name not listed here is refused
#: (``unknown_command``) before any handler runs.
COMMAND_ROLES: dict[str, frozenset[Role]] = {
    # freezer: acknowledge an alarm with the corrective action (HACCP record)
    "ack": frozenset({Role.ASSOCIATE, Role.MANAGER, Role.TECHNICIAN}),
    # dock door: clear a tamper/forced-open lockout; replace revocations or keys
    "reset_lockout": frozenset({Role.MANAGER}),
    "revocations": frozenset({Role.MANAGER}),
    "keys": frozenset({Role.MANAGER}),
    # read-only status
    "door_status": _ANYONE,
    "status": _ANYONE,
    "ping": _ANYONE,
    # event path: the store server asks a gateway to re-send
    "replay": frozenset({Role.STORE_SERVER}),
}


@dataclass(frozen=True)
class Target:
    """The device a command is for."""

    store: str
    kind: str
    dev: str


@dataclass(frozen=True)
class SignedCommand:
    """A verified command.  ``exp`` is epoch seconds; ``ctr`` the per-device counter."""

    id: str
    target: Target
    name: str
    args: dict
    ctr: int
    exp: int
    by: str
    role: Role


def allowed_roles(name: str) -> frozenset[Role]:
    """The roles that may sign ``name``; raises ``CommandRefused(unknown_command)``."""
    try:
        return COMMAND_ROLES[name]
    except KeyError:
        raise CommandRefused(Reason.UNKNOWN_COMMAND.value, f"no such command {name[:40]!r}") \
            from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or len(text) > 2 * MAX_PAYLOAD_BYTES:
        raise CommandRefused(Reason.MALFORMED.value, f"{what} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise CommandRefused(Reason.MALFORMED.value, f"{what} is not base64url") from None


# ----------------------------------------------------------------------------- signing


class CommandSigner:
    """Signs commands with the store's Ed25519 command key (the store server holds it)."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self.key = private_key

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def sign(self, cmd: SignedCommand) -> bytes:
        """The wire payload for ``cmd``.

        ``cmd.ctr`` must be above every counter sent to the device before; ``cmd.exp`` is the
        not-after (epoch s); ``cmd.by``/``cmd.role`` who ordered it; ``cmd.id`` "" for a new
        UUID.
        Raises:
            ValueError: a command the device would refuse (unknown name, a role that may not
                send it, a bad field, too large).
        """
        role = Role(cmd.role)
        if role not in COMMAND_ROLES.get(cmd.name, frozenset()):
            raise ValueError(f"{role.value} may not send {cmd.name!r}" if cmd.name in
                             COMMAND_ROLES else f"unknown command {cmd.name!r}")
        t = cmd.target
        body = {"id": cmd.id or str(uuid.uuid4()), "store": t.store, "kind": t.kind,
                "dev": t.dev, "name": cmd.name, "args": dict(cmd.args), "ctr": cmd.ctr,
                "exp": cmd.exp, "by": cmd.by, "role": role.value}
        try:
            _check_body(body)
            raw = json.dumps(body, separators=(",", ":"), sort_keys=True,
                             allow_nan=False).encode("utf-8")
        except CommandRefused as exc:
            raise ValueError(exc.detail) from None
        sig = self.key.sign(DOMAIN + raw)
        payload = json.dumps({"v": WIRE_VERSION, "cmd": _b64(raw), "sig": _b64(sig)},
                             separators=(",", ":")).encode("ascii")
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"command is {len(payload)} bytes; the limit is "
                             f"{MAX_PAYLOAD_BYTES}")
        return payload


# ----------------------------------------------------------------------------- verifying


class CommandVerifier:
    """Checks commands for one device against the store's command public key."""

    def __init__(self, public_key: Ed25519PublicKey, target: Target):
        self.key, self.target = public_key, target

    def verify(self, name: str, payload: bytes, *, now: float, last_ctr: int) -> SignedCommand:
        """The verified command received on ``.../cmd/{name}``.

        Args:
            name: the command name from the topic.
            payload: the message payload.
            now: the device's wall clock, epoch seconds.
            last_ctr: the highest counter this device has acted on.
        Raises:
            CommandRefused: with ``reason`` one of :class:`Reason`'s values.
        """
        raw, sig = parse_wire(payload)
        try:
            self.key.verify(sig, DOMAIN + raw)
        except InvalidSignature:
            raise CommandRefused(Reason.BAD_SIGNATURE.value,
                                 "signature does not match the store's command key") from None
        cmd = parse_body(raw)
        return check_command(cmd, self.target, name, now=now, last_ctr=last_ctr)


def check_command(cmd: SignedCommand, target: Target, name: str, *, now: float,
                  last_ctr: int) -> SignedCommand:
    """Target, name, role, expiry and counter checks of a signature-checked command."""
    if cmd.target != target:
        t = cmd.target
        raise CommandRefused(Reason.WRONG_DEVICE.value,
                             f"signed for {t.store}/{t.kind}/{t.dev}, not this device")
    if cmd.name != name:
        raise CommandRefused(Reason.MALFORMED.value,
                             f"signed command {cmd.name!r} arrived on topic cmd/{name[:40]}")
    if cmd.role not in allowed_roles(cmd.name):
        raise CommandRefused(Reason.ROLE_NOT_ALLOWED.value,
                             f"{cmd.name} needs one of "
                             f"{', '.join(sorted(r.value for r in allowed_roles(cmd.name)))}; "
                             f"signed by {cmd.by} as {cmd.role.value}")
    if now > cmd.exp:
        raise CommandRefused(Reason.EXPIRED.value, f"expired {now - cmd.exp:.0f} s ago")
    if cmd.ctr <= last_ctr:
        raise CommandRefused(Reason.REPLAYED.value,
                             f"counter {cmd.ctr} is not above the highest seen ({last_ctr})")
    return cmd


def parse_wire(payload: bytes) -> tuple[bytes, bytes]:
    """``(body bytes, signature)`` of a wire payload; raises ``CommandRefused``."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandRefused(Reason.MALFORMED.value, f"payload of {len(payload)} bytes is "
                                                     f"above {MAX_PAYLOAD_BYTES}")
    doc = strict_json(payload)
    if not isinstance(doc, dict) or "sig" not in doc or "cmd" not in doc:
        raise CommandRefused(Reason.UNSIGNED.value, "not a signed command (no cmd/sig)")
    if set(doc) != {"v", "cmd", "sig"} or doc["v"] != WIRE_VERSION:
        raise CommandRefused(Reason.MALFORMED.value,
                             f"expected keys v, cmd, sig with v={WIRE_VERSION}")
    sig = _unb64(doc["sig"], "sig")
    if len(sig) != 64:
        raise CommandRefused(Reason.MALFORMED.value, "sig must be 64 bytes")
    return _unb64(doc["cmd"], "cmd"), sig


def strict_json(data: bytes) -> Any:
    """JSON without NaN/Infinity, duplicate keys or deep nesting; raises ``CommandRefused``."""
    def pairs(items):
        out = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"key {k!r} given twice")
            out[k] = v
        return out

    def no_constant(text):
        raise ValueError(f"{text} is not allowed")

    try:
        return json.loads(data, object_pairs_hook=pairs, parse_constant=no_constant)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise CommandRefused(Reason.MALFORMED.value, f"not valid JSON: {exc}"[:200]) from None


def parse_body(raw: bytes) -> SignedCommand:
    """The :class:`SignedCommand` in signed body bytes (strict); raises ``CommandRefused``."""
    body = strict_json(raw)
    _check_body(body)
    return SignedCommand(body["id"], Target(body["store"], body["kind"], body["dev"]),
                         body["name"], body["args"], body["ctr"], body["exp"], body["by"],
                         Role(body["role"]))


def _check_body(body: Any) -> None:
    def bad(why: str):
        raise CommandRefused(Reason.MALFORMED.value, why)

    if not isinstance(body, dict) or set(body) != _BODY_KEYS:
        bad(f"body keys must be exactly {', '.join(sorted(_BODY_KEYS))}")
    for key, rx in (("store", _ID_RE), ("dev", _ID_RE), ("kind", _ID_RE), ("name", _NAME_RE),
                    ("by", _BY_RE), ("id", _CMD_ID_RE)):
        if not isinstance(body[key], str) or not rx.fullmatch(body[key]):
            bad(f"{key} must match {rx.pattern}")
    for key in ("ctr", "exp"):
        v = body[key]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 2**63:
            bad(f"{key} must be a positive 64-bit integer")
    if not isinstance(body["args"], dict):
        bad("args must be a mapping")
    if body["role"] not in {r.value for r in Role}:
        bad(f"role must be one of {', '.join(r.value for r in Role)}")


# ----------------------------------------------------------------------------- key files


def load_signing_key(path: str | os.PathLike) -> CommandSigner:
    """The store's command signer from a PEM private key file (must be 0600 or stricter)."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningKeyError(f"{path}: command key is readable by group/others "
                                  f"(mode {stat.S_IMODE(mode):o}); chmod 600 it")
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read command key: {exc.strerror}") from None
    except ValueError as exc:
        raise SigningKeyError(f"{path}: not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: command key must be Ed25519")
    return CommandSigner(key)


def load_public_key(path: str | os.PathLike) -> Ed25519PublicKey:
    """The store's command-verification key from a PEM public key file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            key = serialization.load_pem_public_key(fh.read())
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read command public key: {exc.strerror}") \
            from None
    except ValueError as exc:
        raise SigningKeyError(f"{path}: not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: command public key must be Ed25519")
    return key


def write_key_pair(key_path: str | os.PathLike, pub_path: str | os.PathLike) -> None:
    """Make a new command key pair: private PEM (0600) and public PEM (0644), atomically.

    ``storeedge pki init`` makes the store's pair; this is for tools and tests without one.
    """
    from storeedge.atomic import write_atomic

    key = Ed25519PrivateKey.generate()
    write_atomic(key_path, key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), mode=0o600)
    write_atomic(pub_path, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
