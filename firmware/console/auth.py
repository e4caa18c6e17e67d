"""Login checks with lockout and growing back-off.

After ``max_failures`` wrong secrets in a row the console refuses logins for ``base_s``
seconds; every further wrong secret (without a good login in between) doubles the wait, up to
``max_s``.  While locked, a typed secret is not even checked (no oracle for a guessing attack).
A good login resets the count.  Times come from the injected clock's monotonic seconds.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from storeedge.drivers.clock import Clock
from storeedge.firmware.console.secret import Logins, ScryptHash, verify_secret


@dataclass(frozen=True)
class LockoutPolicy:
    """Lockout settings.

    Attributes:
        max_failures: wrong secrets in a row before the first lockout.
        base_s: first lockout, seconds.
        max_s: longest lockout, seconds.
    """

    max_failures: int = 3
    base_s: float = 30.0
    max_s: float = 900.0

    def lock_seconds(self, failures: int) -> float:
        """Lockout length after ``failures`` consecutive failures (0 below the threshold)."""
        if failures < self.max_failures:
            return 0.0
        return min(self.max_s, self.base_s * 2 ** (failures - self.max_failures))


class Outcome(enum.Enum):
    OK = "ok"
    BAD = "bad"          # wrong secret, not (yet) locked
    LOCKED = "locked"    # wrong secret that started a lockout
    REFUSED = "refused"  # attempt during a lockout: not checked


@dataclass(frozen=True)
class AuthResult:
    """Result of one login attempt.

    Attributes:
        outcome: see :class:`Outcome`.
        failures: consecutive failures so far (0 after a good login).
        locked_for_s: seconds until the next attempt is allowed (0 if not locked).
    """

    outcome: Outcome
    failures: int
    locked_for_s: float


class Authenticator:
    """Checks the technician secret, counting failures across sessions of one process."""

    def __init__(self, stored: ScryptHash | Logins, clock: Clock,
                 policy: LockoutPolicy = LockoutPolicy()):
        self.logins = stored if isinstance(stored, Logins) else Logins(shared=stored)
        self._clock = clock
        self.policy = policy
        self.failures = 0
        self._locked_until = 0.0

    @property
    def locked_until(self) -> float:
        """Monotonic time the current (or last) lockout ends; identifies a lockout."""
        return self._locked_until

    def locked_for(self) -> float:
        """Seconds left in the current lockout (0 when logins are allowed)."""
        return max(0.0, self._locked_until - self._clock.monotonic())

    @property
    def named(self) -> bool:
        """True when technicians log in by name (``Login:`` then ``Password:``)."""
        return self.logins.named

    def _check(self, user: str, secret: str) -> bool:
        if not self.logins.named:
            return verify_secret(secret, self.logins.shared)
        stored = self.logins.users.get(user)
        # an unknown name costs the same scrypt work: no oracle for which names exist
        ok = verify_secret(secret, stored or next(iter(self.logins.users.values())))
        return ok and stored is not None

    def attempt(self, secret: str, user: str = "") -> AuthResult:
        """Check ``user``'s ``secret`` unless locked out; update the failure count and lockout."""
        left = self.locked_for()
        if left > 0:
            return AuthResult(Outcome.REFUSED, self.failures, left)
        if self._check(user, secret):
            self.failures = 0
            return AuthResult(Outcome.OK, 0, 0.0)
        self.failures += 1
        lock = self.policy.lock_seconds(self.failures)
        if lock > 0:
            self._locked_until = self._clock.monotonic() + lock
            return AuthResult(Outcome.LOCKED, self.failures, lock)
        return AuthResult(Outcome.BAD, self.failures, 0.0)
