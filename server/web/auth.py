"""Accounts, passwords (scrypt), sessions, CSRF tokens, lockout and role permissions.

* Passwords: ``hashlib.scrypt`` (N=2**14, r=8, p=1, 16-byte salt, 32-byte key), stored as
  ``scrypt$N$r$p$salt_hex$key_hex``; compared in constant time.
* Sessions: a random 32-byte token in an HttpOnly, SameSite=Strict cookie (Secure over TLS);
  only its SHA-256 is stored, with the person's name, a CSRF token and an expiry.
* Lockout: ``lockout_after`` failed logins in a row lock the account for ``lockout_s``
  seconds; a login for an unknown name costs the same scrypt time (no name probing).
* Roles: associate, manager, technician; the role is read from the database on every
  request, never from the client.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import NamedTuple

from storeedge.server.web.exc import AuthError, FormError, LockedOut
from storeedge.server.web.store import Session, WebStore

ROLES = ("associate", "manager", "technician")
# what each role may do: page / action names used by the app
PERMISSIONS: dict[str, frozenset[str]] = {
    "associate": frozenset({"alerts", "resolve", "ack"}),
    "manager": frozenset({"alerts", "resolve", "ack", "freezers", "door", "issue", "figures",
                          "users", "audit", "devices"}),
    "technician": frozenset({"alerts", "resolve", "ack", "freezers", "devices", "audit"}),
}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,31}")
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
MIN_PASSWORD = 8
MAX_PASSWORD = 256


class LoginResult(NamedTuple):
    """A successful login: the cookie value (token) and the session's CSRF token."""

    token: str
    csrf: str
    name: str


def hash_password(password: str) -> str:
    """The scrypt hash string of ``password``."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 2**20, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${key.hex()}"


def check_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` scrypt hash string."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(key) // 2, maxmem=64 * 2**20)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), key)


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def check_new_user(name: str, role: str, password: str) -> None:
    """Raise :class:`FormError` when a new account's fields are not acceptable."""
    if not NAME_RE.fullmatch(name or ""):
        raise FormError("name: 1-32 letters, digits, space, dot, dash or underscore")
    if role not in ROLES:
        raise FormError(f"role: must be one of {', '.join(ROLES)}")
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        raise FormError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    """Logins and sessions on a :class:`WebStore`.

    Args:
        store: the page's tables.
        session_ttl_s: a session expires this long after login (s).
        lockout_after: failed logins in a row that lock an account.
        lockout_s: how long a locked account stays locked (s).
    """

    def __init__(self, store: WebStore, session_ttl_s: float = 8 * 3600,
                 lockout_after: int = 5, lockout_s: float = 300.0):
        self.store, self.ttl = store, session_ttl_s
        self.lockout_after, self.lockout_s = lockout_after, lockout_s

    def add_user(self, name: str, role: str, password: str, by: str) -> None:
        """Create an account (raises FormError for bad fields or an existing name)."""
        check_new_user(name, role, password)
        if self.store.user(name) is not None:
            raise FormError(f"name: {name!r} already exists")
        self.store.add_user(name, role, hash_password(password), by)

    def set_password(self, name: str, password: str, by: str) -> None:
        """A new password for ``name`` (unlocks it, ends its sessions); FormError if bad."""
        if self.store.user(name) is None:
            raise FormError(f"name: no account {name!r}")
        if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
            raise FormError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        self.store.write([("UPDATE web_users SET pw=?, failed=0, locked_until=0 WHERE name=?",
                           (hash_password(password), name)),
                          ("DELETE FROM web_sessions WHERE name=?", (name,)),
                          self.store.audit_stmt(by, "user.password", name)])

    def remove_user(self, name: str, by: str) -> None:
        """Delete an account and its sessions (not oneself, not the last manager)."""
        user = self.store.user(name)
        if user is None:
            raise FormError(f"name: no account {name!r}")
        if name == by:
            raise FormError("name: you cannot remove your own account")
        managers = [u for u in self.store.users() if u.role == "manager"]
        if user.role == "manager" and len(managers) <= 1:
            raise FormError("name: the last manager cannot be removed")
        self.store.write([("DELETE FROM web_sessions WHERE name=?", (name,)),
                          ("DELETE FROM web_users WHERE name=?", (name,)),
                          self.store.audit_stmt(by, "user.remove", name, f"role {user.role}")])

    def login(self, name: str, password: str) -> LoginResult:
        """Check the password and open a session; raises AuthError / LockedOut."""
        user = self.store.user(name) if NAME_RE.fullmatch(name or "") else None
        now = time.time()
        if user is None:
            check_password(password or "", _DUMMY_HASH)      # same time as a real check
            raise AuthError("wrong name or password")
        if user.locked_until > now:
            raise LockedOut(f"account locked after {self.lockout_after} failed logins; "
                            f"try again in {int(user.locked_until - now) + 1} s")
        if not check_password(password or "", user.pw):
            failed = user.failed + 1
            locked = now + self.lockout_s if failed >= self.lockout_after else 0.0
            self.store.login_failed(user.name, 0 if locked else failed, locked)
            if locked:
                raise LockedOut(f"account locked after {self.lockout_after} failed logins; "
                                f"try again in {int(self.lockout_s)} s")
            raise AuthError("wrong name or password")
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        self.store.open_session(token_hash(token), user.name, csrf, self.ttl)
        return LoginResult(token, csrf, user.name)

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None (missing, unknown or expired)."""
        if not token or len(token) > 128:
            return None
        sess = self.store.session(token_hash(token))
        if sess is None or sess.expires < time.time():
            return None
        return sess

    def logout(self, sess: Session) -> None:
        self.store.close_session(sess.token, sess.name)


def allowed(sess: Session, what: str) -> bool:
    """True when the session's role may see/do ``what``."""
    return what in PERMISSIONS.get(sess.role, frozenset())


def check_csrf(sess: Session, token: str | None) -> None:
    """Raise AuthError unless ``token`` is the session's CSRF token."""
    if not token or not hmac.compare_digest(str(token), sess.csrf):
        raise AuthError("the form is missing its security token (CSRF); reload the page "
                        "and try again")
