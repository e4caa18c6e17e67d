"""The device's command gate: verify, check the durable counter, rate-limit, count refusals.

Every command a :class:`~storeedge.firmware.common.service.DeviceService` receives passes
:meth:`CommandGate.admit` before a handler runs:

* signed by the store's command key (``security.command_pub``) for this device, not expired,
  its role allowed by :data:`storeedge.signing.COMMAND_ROLES`, its counter above the highest
  this device has acted on (kept durably in ``<outbox.path>.cmdctr``, written before acting);
* unsigned commands only with ``security.insecure: true`` (logged as a warning; ``by`` is then
  ``unverified:<claimed name>``);
* at most :data:`RATE_BURST` accepted commands at once, refilled at :data:`RATE_PER_S`.

Refusals never become one event each: they are counted per reason and summarised in a
``device.commands_refused`` event at most every :data:`SUMMARY_S` seconds.
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from storeedge.atomic import write_atomic
from storeedge.exc import CommandRefused, SigningKeyError
from storeedge.settings import DeviceConfig
from storeedge.signing import CommandVerifier, Reason, Target, load_public_key, strict_json

log = logging.getLogger(__name__)

RATE_PER_S = 2.0          # accepted commands per second, sustained
RATE_BURST = 20           # accepted commands at once
SUMMARY_S = 60.0          # at most one refusal summary event per this many seconds
QUEUE_MAX = 64            # commands waiting for the worker; more are refused (queue_full)


@dataclass(frozen=True)
class Admitted:
    """A command cleared to run: who ordered it (``by``, ``role``) and its counter."""

    name: str
    args: dict
    by: str
    role: str
    id: str
    ctr: int


class DurableCounter:
    """The highest command counter acted on, in a small file replaced atomically.

    Args:
        path: the counter file.
        fresh: this is the device's first start (empty outbox): a missing file means 0.
            Otherwise a missing or unreadable file means it was lost, and the counter
            starts at "now in ms" (the sender's counters are at least its clock in ms), so
            no command sent before is accepted again.
    """

    def __init__(self, path: str, fresh: bool = True):
        self.path = path
        self.value = self._load(fresh)

    def _load(self, fresh: bool) -> int:
        try:
            with open(self.path, encoding="ascii") as fh:
                return int(fh.read().strip() or 0)
        except FileNotFoundError as exc:
            if fresh:
                return 0
            problem: Exception = exc
        except (OSError, ValueError) as exc:
            problem = exc
        floor = int(time.time() * 1000)
        log.error("command counter %s lost (%s); continuing above %d", self.path, problem,
                  floor)
        return floor

    def advance(self, ctr: int) -> None:
        """Make ``ctr`` the highest seen (durable before it returns)."""
        write_atomic(self.path, f"{ctr}\n".encode("ascii"), mode=0o600)
        self.value = ctr


class TokenBucket:
    """``rate`` tokens per second up to ``burst`` (monotonic seconds)."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class RefusalCounts:
    """Refusals per reason: ``total`` since start, ``pending`` since the last summary."""

    total: collections.Counter = field(default_factory=collections.Counter)
    pending: collections.Counter = field(default_factory=collections.Counter)
    last_name: str = ""
    last_detail: str = ""


class CommandGate:
    """Admission of commands for one device (see the module doc).

    Args:
        cfg: the device config (``device``, ``outbox.path``, ``security`` used).
        now: wall clock, epoch seconds (the device's clock: expiry is judged by it).
        fresh: first start of this device (see :class:`DurableCounter`).
    """

    def __init__(self, cfg: DeviceConfig, now, *, fresh: bool = True):
        dev, sec = cfg.device, cfg.security
        self.target = Target(dev.store, dev.kind, dev.id)
        self.now = now
        self.insecure = sec.insecure
        self.verifier = _verifier(sec.command_pub, self.target)
        self.counter = DurableCounter(counter_path(cfg), fresh)
        self.bucket = TokenBucket(RATE_PER_S, RATE_BURST)
        self.refusals = RefusalCounts()
        self._lock = threading.Lock()
        if self.insecure:
            log.warning("security.insecure is set: UNSIGNED commands are accepted on %s",
                        dev.id)
        elif self.verifier is None:
            log.error("security.command_pub is not set: every command to %s is refused", dev.id)

    def admit(self, name: str, payload: bytes, known: bool) -> Admitted:
        """The command cleared to run, or ``CommandRefused`` (not yet counted: see
        :meth:`refused`).  ``known``: this device has a handler for ``name``."""
        if not known:
            raise CommandRefused(Reason.UNKNOWN_COMMAND.value, f"no handler for {name[:40]!r}")
        if self.insecure and not _looks_signed(payload):
            cmd = _unsigned(name, payload)
        elif self.verifier is None:
            raise CommandRefused(Reason.UNSIGNED.value, "no command key configured")
        else:
            signed = self.verifier.verify(name, payload, now=self.now(),
                                          last_ctr=self.counter.value)
            cmd = Admitted(signed.name, signed.args, signed.by, signed.role.value, signed.id,
                           signed.ctr)
        if not self.bucket.take():
            raise CommandRefused(Reason.RATE_LIMITED.value,
                                 f"more than {RATE_BURST} commands at {RATE_PER_S}/s")
        if cmd.ctr:
            self.counter.advance(cmd.ctr)      # durable before acting: no replay after a crash
        return cmd

    def refused(self, name: str, exc: CommandRefused) -> int:
        """Count one refusal (thread-safe: the MQTT thread counts queue overflows); returns
        how many of this reason are pending since the last summary (1: the first)."""
        with self._lock:
            self.refusals.total[exc.reason] += 1
            self.refusals.pending[exc.reason] += 1
            self.refusals.last_name, self.refusals.last_detail = name[:64], exc.detail[:200]
            return self.refusals.pending[exc.reason]

    def take_pending(self) -> RefusalCounts | None:
        """The refusals since the last call (None when there were none); resets them."""
        with self._lock:
            if not self.refusals.pending:
                return None
            out = RefusalCounts(collections.Counter(self.refusals.total),
                                self.refusals.pending, self.refusals.last_name,
                                self.refusals.last_detail)
            self.refusals.pending = collections.Counter()
            return out


def _verifier(pub_path: str | None, target: Target) -> CommandVerifier | None:
    """The verifier for ``pub_path``; None (every signed command refused, logged) when there
    is no key or it cannot be read: a bad command key must not stop the device itself."""
    if not pub_path:
        return None
    try:
        return CommandVerifier(load_public_key(pub_path), target)
    except SigningKeyError as exc:
        log.error("security.command_pub: %s; every command is refused", exc)
        return None


def _looks_signed(payload: bytes) -> bool:
    return b'"sig"' in payload[:4096]


def _unsigned(name: str, payload: bytes) -> Admitted:
    """An unsigned command (insecure mode only): ``by`` is marked unverified."""
    doc = strict_json(payload or b"{}")
    if not isinstance(doc, dict) or not isinstance(doc.get("args", {}), dict):
        raise CommandRefused(Reason.MALFORMED.value, "expected {\"args\": {...}, ...}")
    claimed = str(doc.get("by", "?"))[:48]
    return Admitted(name, dict(doc.get("args") or {}), f"unverified:{claimed}", "",
                    str(doc.get("id", ""))[:64], 0)


def counter_path(cfg: DeviceConfig) -> str:
    """Where the device keeps its highest command counter."""
    return os.fspath(f"{cfg.outbox.path}.cmdctr")


__all__ = ["Admitted", "CommandGate", "DurableCounter", "counter_path"]
