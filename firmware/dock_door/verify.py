"""Offline verification of a QR text, with a reason for every denial, and scan throttling.

Order of checks: format -> key id -> key revoked -> signature -> store/door -> wall clock sane
-> time window (with bounded skew) -> credential revoked -> already used.  The final "used"
check here is advisory; :meth:`DoorStateStore.consume` decides atomically.

Example::

    v = Verifier(state, DoorIdentity(store="s0042", door="door-1"), clock, skew_s=120)
    d = v.check(text)      # Decision(granted=False, reason=Reason.EXPIRED, detail="...")
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from storeedge.drivers.clock import Clock
from storeedge.credential import Credential, parse, signature_valid
from storeedge.firmware.dock_door.exc import UnknownKeyError
from storeedge.exc import CredentialFormatError
from storeedge.firmware.dock_door.store import DoorStateStore

EARLIEST_SANE_TIME = 1_735_689_600.0     # 2025-01-01 UTC: an earlier wall clock is not set


class Reason(str, Enum):
    """Why a credential was granted or denied (the value goes into events and the console)."""

    GRANTED = "granted"
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_DOOR = "wrong_door"
    CLOCK_NOT_SET = "clock_not_set"
    CLOCK_BEHIND = "clock_behind"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    USED = "used"
    THROTTLED = "throttled"
    LOCKOUT = "lockout"
    JAMMED = "jammed"
    DOOR_ERROR = "door_error"


@dataclass(frozen=True)
class Decision:
    """Result of a check: ``granted``, ``reason``, a human ``detail`` and the credential when
    it could be parsed (None for malformed texts)."""

    granted: bool
    reason: Reason
    detail: str
    credential: Credential | None = None


@dataclass(frozen=True)
class DoorIdentity:
    """The store and door id a credential must name."""

    store: str
    door: str


def deny(reason: Reason, detail: str, cred: Credential | None = None) -> Decision:
    return Decision(False, reason, detail, cred)


class Verifier:
    """Checks QR texts against the trust store and the door's identity, offline.

    Args:
        state: the door's :class:`DoorStateStore` (keys, revocations, used ids).
        identity: this door's store and door id.
        clock: wall clock source (``clock.time()``, seconds since the epoch).
        skew_s: tolerated clock difference, seconds, applied to both ends of the window.
    """

    def __init__(self, state: DoorStateStore, identity: DoorIdentity, clock: Clock, *,
                 skew_s: float = 120.0):
        self.state, self.identity, self.clock, self.skew_s = state, identity, clock, skew_s

    def check(self, text: str) -> Decision:
        """Verify ``text``; never raises for bad input (returns a denial instead)."""
        try:
            cred = parse(text)
        except CredentialFormatError as exc:
            return deny(Reason(exc.reason), str(exc))
        return self.check_credential(cred)

    def check_credential(self, cred: Credential) -> Decision:
        denial = self._check_key(cred) or self._check_place(cred) or self._check_time(cred)
        if denial:
            return denial
        if self.state.cred_revoked(cred.cred_id):
            return deny(Reason.REVOKED, f"credential {cred.cred_hex} is revoked", cred)
        used = self.state.uses(cred.cred_id)
        if used >= cred.uses:
            return deny(Reason.USED, f"credential already used {used} of {cred.uses} time(s)", cred)
        return Decision(True, Reason.GRANTED, f"{cred.vendor} / {cred.po}", cred)

    def _check_key(self, cred: Credential) -> Decision | None:
        try:
            public = self.state.public_key(cred.key_id)
        except UnknownKeyError:
            return deny(Reason.UNKNOWN_KEY, f"signing key {cred.key_id} is not trusted here", cred)
        if self.state.key_revoked(cred.key_id):
            return deny(Reason.REVOKED, f"signing key {cred.key_id} is revoked", cred)
        if not signature_valid(cred, public):
            return deny(Reason.BAD_SIGNATURE, f"signature does not match key {cred.key_id}", cred)
        return None

    def _check_place(self, cred: Credential) -> Decision | None:
        if cred.store != self.identity.store or cred.door != self.identity.door:
            return deny(Reason.WRONG_DOOR, f"credential is for {cred.store}/{cred.door}, "
                        f"this is {self.identity.store}/{self.identity.door}", cred)
        return None

    def _check_time(self, cred: Credential) -> Decision | None:
        now = self.clock.time()
        if now < EARLIEST_SANE_TIME:
            return deny(Reason.CLOCK_NOT_SET, "the door's wall clock is not set (no NTP/RTC yet)",
                        cred)
        hwm = self.state.clock_hwm()
        if now < hwm - self.skew_s:
            return deny(Reason.CLOCK_BEHIND,
                        f"the wall clock is {hwm - now:.0f} s behind the latest time this door "
                        f"has seen (skew {self.skew_s:.0f} s): fix the clock", cred)
        if now + self.skew_s < cred.not_before:
            return deny(Reason.NOT_YET_VALID,
                        f"valid in {cred.not_before - now:.0f} s (skew {self.skew_s:.0f} s)", cred)
        if now - self.skew_s > cred.not_after:
            return deny(Reason.EXPIRED, f"expired {now - cred.not_after:.0f} s ago", cred)
        return None


@dataclass(frozen=True)
class ThrottleStatus:
    """``blocked`` until monotonic time ``until`` (seconds); ``failures`` in a row."""

    blocked: bool
    until: float
    failures: int


class Throttle:
    """Growing back-off after wrong credentials.

    After ``free_failures`` denials in a row, each further denial blocks scanning for
    ``base_s * 2**k`` seconds (k = 0, 1, ...), capped at ``max_s``.  A grant, or ``quiet_s``
    without a denial, resets the count.  Times are monotonic seconds.
    """

    def __init__(self, *, free_failures: int = 3, base_s: float = 5.0, max_s: float = 300.0,
                 quiet_s: float = 600.0):
        self.free, self.base_s, self.max_s, self.quiet_s = free_failures, base_s, max_s, quiet_s
        self._failures, self._until, self._last = 0, 0.0, float("-inf")

    def status(self, now: float) -> ThrottleStatus:
        if now - self._last > self.quiet_s and now >= self._until:
            self._failures = 0
        return ThrottleStatus(now < self._until, self._until, self._failures)

    def failure(self, now: float) -> ThrottleStatus:
        self.status(now)
        self._failures += 1
        self._last = now
        extra = self._failures - self.free
        if extra > 0:
            self._until = now + min(self.max_s, self.base_s * 2 ** (extra - 1))
        return self.status(now)

    def success(self) -> None:
        self._failures, self._until = 0, 0.0
