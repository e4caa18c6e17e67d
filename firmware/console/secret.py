"""Technician secret: stored only as a scrypt hash, checked in constant time.

Format of the stored hash (one line, ASCII)::

    scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>

Per-technician logins: the file may instead hold one ``<name>:<hash>`` line per technician
(``storeedge console --set-secret --user NAME``); the console then asks ``Login:`` and
``Password:`` and records every commit by that name.  A file with one bare hash line (the
shared secret of older installs) keeps working: ``Password:`` only, commits ``by console``.

``n``, ``r``, ``p`` are the scrypt cost parameters (defaults n=2**14, r=8, p=1: 16 MiB of
memory and about 0.1 s per check on a Pi 4), so a file written with stronger settings later
still verifies.  The secret file holds this line and nothing else; it is written atomically with
mode 0600 and never read back into logs or events.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from storeedge.atomic import write_atomic
from storeedge.firmware.console.exc import SecretError

MIN_SECRET_LEN = 8
DEFAULT_N, DEFAULT_R, DEFAULT_P = 2 ** 14, 8, 1
KEY_LEN = 32
USER_RE = re.compile(r"[a-z][a-z0-9._-]{0,31}")


class ScryptHash(NamedTuple):
    """A parsed stored hash."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        b64 = base64.b64encode
        return (f"scrypt${self.n}${self.r}${self.p}$"
                f"{b64(self.salt).decode('ascii')}${b64(self.key).decode('ascii')}")


def _derive(secret: str, n: int, r: int, p: int, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * 1024 * 1024, dklen=KEY_LEN)


def hash_secret(secret: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    """Return the stored form of ``secret`` (a fresh 16-byte random salt each call).

    Raises:
        SecretError: the secret is shorter than :data:`MIN_SECRET_LEN` characters.
    """
    if len(secret) < MIN_SECRET_LEN:
        raise SecretError(f"the technician secret must be at least {MIN_SECRET_LEN} characters")
    salt = os.urandom(16)
    return ScryptHash(n, r, p, salt, _derive(secret, n, r, p, salt)).encode()


def parse_hash(stored: str) -> ScryptHash:
    """Parse a stored hash line; raises :class:`SecretError` if it is malformed."""
    parts = stored.strip().split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise SecretError("secret file does not hold a 'scrypt$n$r$p$salt$key' line")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError as exc:
        raise SecretError(f"secret file is malformed: {exc}") from None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or len(key) < 16:
        raise SecretError("secret file has invalid scrypt parameters")
    return ScryptHash(n, r, p, salt, key)


def verify_secret(secret: str, stored: ScryptHash) -> bool:
    """True if ``secret`` matches ``stored`` (constant-time comparison)."""
    candidate = _derive(secret, stored.n, stored.r, stored.p, stored.salt)
    return hmac.compare_digest(candidate, stored.key)


def _read_secret_text(path: str | os.PathLike) -> str:
    """The secret file's text; raises :class:`SecretError` with the reason."""
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read()
    except OSError as exc:
        raise SecretError(f"cannot read technician secret file {os.fspath(path)!r}: "
                          f"{exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretError("secret file is not ASCII") from None


def read_secret_file(path: str | os.PathLike) -> ScryptHash:
    """Read and parse the secret file; raises :class:`SecretError` with the reason."""
    return parse_hash(_read_secret_text(path))


def write_secret_file(path: str | os.PathLike, secret: str, **cost: int) -> None:
    """Hash ``secret`` and store it in ``path`` atomically, mode 0600."""
    line = hash_secret(secret, **cost) + "\n"
    write_atomic(path, line.encode("ascii"), mode=0o600)


@dataclass
class Logins:
    """The console's accounts.

    Attributes:
        users: scrypt hash per technician name (empty for a shared-secret file).
        shared: the shared secret's hash (older installs), or None.
    """

    users: dict[str, ScryptHash] = field(default_factory=dict)
    shared: ScryptHash | None = None

    @property
    def named(self) -> bool:
        """True when technicians log in by name."""
        return bool(self.users)


def parse_logins(text: str) -> Logins:
    """Parse a secret file: one bare hash line, or ``name:hash`` lines (``#`` comments)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) == 1 and lines[0].startswith("scrypt$"):
        return Logins(shared=parse_hash(lines[0]))
    users: dict[str, ScryptHash] = {}
    for number, line in enumerate(lines, 1):
        name, sep, stored = line.partition(":")
        if not sep or not USER_RE.fullmatch(name):
            raise SecretError(f"secret file line {number}: expected 'name:scrypt$...' with a "
                              f"name of a-z, 0-9, . _ - (up to 32 characters)")
        users[name] = parse_hash(stored)
    if not users:
        raise SecretError("secret file holds no login: run 'storeedge console --set-secret "
                          "--user NAME'")
    return Logins(users=users)


def read_logins(path: str | os.PathLike) -> Logins:
    """Read the secret file (shared or per-technician); SecretError with the reason."""
    return parse_logins(_read_secret_text(path))


def write_user(path: str | os.PathLike, user: str, secret: str, **cost: int) -> None:
    """Add or replace technician ``user`` in ``path`` (atomic, 0600); other users stay.

    A shared-secret file is replaced by per-technician logins (the shared secret stops working).
    """
    if not USER_RE.fullmatch(user):
        raise SecretError(f"user name {user!r}: use a-z, 0-9, . _ - (up to 32 characters, "
                          f"starting with a letter)")
    users: dict[str, ScryptHash] = {}
    if os.path.exists(path):
        users = read_logins(path).users
    encoded = {name: h.encode() for name, h in users.items()}
    encoded[user] = hash_secret(secret, **cost)
    text = "".join(f"{name}:{h}\n" for name, h in sorted(encoded.items()))
    write_atomic(path, text.encode("ascii"), mode=0o600)
