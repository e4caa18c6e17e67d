"""Receiving events: checks every hop applies, and contiguous watermarks.

Used by the gateway relay and the store server alike:

* :class:`Screen` turns an MQTT message into an :class:`Envelope` or a :class:`Rejection`
  with a reason (malformed JSON, schema, oversized, unknown device, topic mismatch), never
  raising, so a bad message is counted and acknowledged and never blocks the ones behind it.
  Also refused, each with its own counted reason: unknown event types (``unknown_type``),
  NaN/Infinity anywhere in the body (``non_finite``), nesting deeper than
  :data:`MAX_DEPTH` (``too_deep``), and ``covers``/``lost`` ranges that do not lie strictly
  below the event's own seq within :data:`MAX_DECLARED_SPAN` seqs (``bad_range``).  Given a
  :class:`~storeedge.seal.KeyRing` (the store server), every envelope's end-to-end seal is
  checked (``bad_seal``; ``unsealed`` unless unsealed events are allowed).
* :func:`declared_ranges` lists the seqs an event says are covered (``telemetry.coalesced``) or
  gone for good (``outbox.salvaged``), which receivers count as delivered.
* :class:`Watermark` tracks the highest contiguous seq held for one device.
"""
from __future__ import annotations

import bisect
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

from storeedge import topics
from storeedge.batch import split_batch
from storeedge.events import (REGISTRY, Envelope, load_all_event_types,
                                              validate_body)
from storeedge.exc import BatchError, EventError

log = logging.getLogger(__name__)

CONTROL_TYPES = ("telemetry.coalesced", "outbox.salvaged")
# The most seqs one coalesced/salvaged event may account for, counted back from its own seq:
# a default outbox (64 MiB) holds at most ~2**18 events of >= 256 bytes, so no genuine
# summary or salvage report reaches further back.  Bounds the placeholders a receiver writes.
MAX_DECLARED_SPAN = 2**18
MAX_DEPTH = 16                   # JSON nesting levels allowed in an event body
INTEGRITY_REASONS = frozenset({"bad_seal", "unsealed"})


class Rejection(NamedTuple):
    """Why a message was refused (``reason`` is a short counter key, ``detail`` for logs).

    ``dev``/``seq`` are the envelope's claimed identity when it could be parsed.
    """

    reason: str
    detail: str
    topic: str
    dev: str | None = None
    seq: int | None = None


@dataclass
class Screen:
    """Checks an incoming event message.

    Args:
        max_payload: largest accepted payload (one event) in bytes.
        max_batch: largest accepted batch frame in bytes.
        devices: allowed device ids (None: any device).
        strict_bodies: check bodies of known types against their schema.
        keyring: check every envelope's end-to-end seal with it (None: no check, the gateway).
        allow_unsealed: with a keyring, accept envelopes that carry no seal (insecure mode).
        max_span: see :data:`MAX_DECLARED_SPAN` (seqs).
    """

    max_payload: int = 256 * 1024
    max_batch: int = 4 * 2**20
    devices: frozenset[str] | None = None
    strict_bodies: bool = True
    keyring: Any = None
    allow_unsealed: bool = False
    max_span: int = MAX_DECLARED_SPAN
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        load_all_event_types()

    def check(self, topic: str, payload: bytes) -> Envelope | Rejection:
        """The envelope, or why not. Never raises."""
        return self._guarded(self._check, topic, payload)

    def check_batch(self, topic: str, frame: bytes) -> list[Envelope | Rejection]:
        """Each element of a batch frame (see :mod:`batch`) screened like a single event.

        A frame that cannot be split is one rejection; a bad element rejects only itself.
        Never raises.
        """
        if len(frame) > self.max_batch:
            return [self._reject("oversized", f"batch of {len(frame)} bytes > {self.max_batch}",
                                 topic)]
        parts = topics.parse(topic)
        if parts is None or parts.channel != "batch" or parts.rest:
            return [self._reject("topic", "not a batch topic", topic)]
        try:
            elements = split_batch(frame)
        except BatchError as exc:
            return [self._reject("malformed", f"batch frame: {exc}", topic)]
        expect = (parts.store, parts.kind, parts.dev, None)
        return [self._guarded(self._element, topic, element, expect) for element in elements]

    def _guarded(self, check, topic: str, *args) -> Envelope | Rejection:
        try:
            return check(topic, *args)
        except EventError as exc:
            return self._reject("schema", str(exc), topic)
        except Exception as exc:  # a bug here must not stop the relay
            log.exception("unexpected error screening %s", topic)
            return self._reject("internal", f"{type(exc).__name__}: {exc}", topic)

    def _check(self, topic: str, payload: bytes) -> Envelope | Rejection:
        parts = topics.parse(topic)
        if parts is None or parts.channel != "evt":
            return self._reject("topic", "not an event topic", topic)
        return self._element(topic, payload, (parts.store, parts.kind, parts.dev, parts.rest))

    def _element(self, topic: str, payload: bytes,
                 expect: tuple[str, str, str, str | None]) -> Envelope | Rejection:
        """One envelope; ``expect`` is (store, kind, dev, type) from the topic (type None:
        a batch topic names no type)."""
        if len(payload) > self.max_payload:
            return self._reject("oversized", f"{len(payload)} bytes > {self.max_payload}", topic)
        try:
            env = Envelope.from_json(payload, max_bytes=self.max_payload)
        except EventError as exc:
            text = str(exc)
            reason = ("malformed" if text.startswith("malformed JSON") else
                      "too_deep" if text.startswith("nesting") else "schema")
            return self._reject(reason, text, topic)
        if (env.store, env.kind, env.dev, env.type if expect[3] is not None else None) != expect:
            return self._reject("topic_mismatch", f"envelope {env.store}/{env.kind}/{env.dev}/"
                                f"{env.type} arrived on {topic}", topic)
        if self.devices is not None and env.dev not in self.devices:
            return self._reject("unknown_device", f"device {env.dev!r} is not enrolled "
                                "(add it to the device list)", topic)
        if self.keyring is not None:
            problem = self._seal_problem(env, payload)
            if problem is not None:
                return self._reject(problem[0], problem[1], topic, env)
        problem = self._content_problem(env)
        if problem is not None:
            return self._reject(problem[0], problem[1], topic, env)
        return env

    def _seal_problem(self, env: Envelope, payload: bytes) -> tuple[str, str] | None:
        """``(reason, detail)`` if the end-to-end seal is missing or wrong."""
        if env.seal is None:
            if self.allow_unsealed:
                return None
            return "unsealed", f"{env.dev} seq {env.seq} carries no end-to-end seal"
        verdict = self.keyring.verify(env.store, env.dev, payload)
        if verdict.value != "ok":
            return verdict.value, (f"{env.dev} seq {env.seq}: seal does not match the "
                                   "device's key (altered, reordered or invented)")
        return None

    def _content_problem(self, env: Envelope) -> tuple[str, str] | None:
        """``(reason, detail)`` if the type, priority, body or declared ranges are refused."""
        etype = REGISTRY.get(env.type)
        if etype is None:
            return "unknown_type", f"event type {env.type!r} is not registered"
        if int(etype.prio) != env.prio:
            return "schema", f"{env.type} must have prio {int(etype.prio)}, got {env.prio}"
        problem = tree_problem(env.body)
        if problem is not None:
            return problem
        if self.strict_bodies:
            validate_body(env.type, env.body)
        if env.type in CONTROL_TYPES:
            return self._range_problem(env)
        return None

    def _range_problem(self, env: Envelope) -> tuple[str, str] | None:
        key = "covers" if env.type == "telemetry.coalesced" else "lost"
        floor = env.seq - self.max_span
        for item in env.body.get(key, []):
            if not (isinstance(item, list) and len(item) == 2 and all(_is_int(v) for v in item)
                    and max(1, floor) <= item[0] <= item[1] < env.seq):
                return "bad_range", (f"{env.type} seq {env.seq}: {key} range {item!r} must lie "
                                     f"in [{max(1, floor)}, {env.seq - 1}]")
        return None

    def _reject(self, reason: str, detail: str, topic: str,
                env: Envelope | None = None) -> Rejection:
        self.counts[reason] += 1
        log.warning("rejected message on %s: %s: %s", topic, reason, detail[:200])
        if env is None:
            return Rejection(reason, detail, topic)
        return Rejection(reason, detail, topic, env.dev, env.seq)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def tree_problem(value: Any, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """``("too_deep" | "non_finite", detail)`` for a decoded JSON object, or None if fine."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return "too_deep", f"body nested deeper than {max_depth} levels"
        for child in (item.values() if isinstance(item, dict) else item):
            if isinstance(child, float):
                if not math.isfinite(child):
                    return "non_finite", f"non-finite number {child!r} in the body"
            elif isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return None


def declared_ranges(env: Envelope) -> list[tuple[int, int]]:
    """Seq ranges this event declares delivered (coalesced) or gone (salvaged)."""
    if env.type == "telemetry.coalesced":
        key = "covers"
    elif env.type == "outbox.salvaged":
        key = "lost"
    else:
        return []
    out = []
    for item in env.body.get(key, []):
        if (isinstance(item, list) and len(item) == 2 and all(isinstance(v, int) for v in item)
                and 1 <= item[0] <= item[1]):
            out.append((item[0], item[1]))
    return out


class Watermark:
    """Highest contiguous seq held for one device, with the seq ranges held above it.

    Ranges, not single seqs: a summary accounting for 2**18 seqs costs one entry.

    Args:
        wm: the persisted watermark (every seq <= wm is held or accounted for).
        above: seqs held above ``wm`` (from storage, at start-up).
    """

    def __init__(self, wm: int = 0, above: Iterable[int] = ()):
        self.wm = wm
        self._lo: list[int] = []     # sorted starts of disjoint, non-adjacent ranges > wm + 1
        self._hi: list[int] = []     # their ends
        for s in sorted(above):
            self.add(s)

    @property
    def above(self) -> set[int]:
        """Seqs held above the watermark (for tests and small reports)."""
        return {s for lo, hi in zip(self._lo, self._hi) for s in range(lo, hi + 1)}

    def add(self, seq: int) -> None:
        if seq == self.wm + 1 and not self._lo:
            self.wm = seq                       # the common case: in order
        elif seq > self.wm:
            self.add_range(seq, seq)

    def add_range(self, lo: int, hi: int) -> None:
        """Account for every seq in ``[lo, hi]`` (only the part above the watermark)."""
        lo = max(lo, self.wm + 1)
        if hi < lo:
            return
        # merge with every range that overlaps or touches [lo, hi]
        i = bisect.bisect_left(self._hi, lo - 1)
        j = bisect.bisect_right(self._lo, hi + 1)
        if i < j:
            lo, hi = min(lo, self._lo[i]), max(hi, self._hi[j - 1])
        self._lo[i:j] = [lo]
        self._hi[i:j] = [hi]
        if self._lo[0] == self.wm + 1:
            self.wm = self._hi[0]
            del self._lo[0], self._hi[0]
