"""Receiving events: checks every hop applies, and contiguous watermarks.

Used by the gateway relay and the store server alike:

* :class:`Screen` turns an MQTT message into an :class:`Envelope` or a :class:`Rejection`
  with a reason (malformed JSON, schema, oversized, unknown device, topic mismatch), never
  raising, so a bad message is counted and acknowledged and never blocks the ones behind it.
* :func:`declared_ranges` lists the seqs an event says are covered (``telemetry.coalesced``) or
  gone for good (``outbox.salvaged``), which receivers count as delivered.
* :class:`Watermark` tracks the highest contiguous seq held for one device.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from storeedge.firmware.common import topics
from storeedge.firmware.common.batch import split_batch
from storeedge.firmware.common.events import (REGISTRY, Envelope, load_all_event_types,
                                              validate_body)
from storeedge.firmware.common.exc import BatchError, EventError

log = logging.getLogger(__name__)

CONTROL_TYPES = ("telemetry.coalesced", "outbox.salvaged")


class Rejection(NamedTuple):
    """Why a message was refused (``reason`` is a short counter key, ``detail`` for logs)."""

    reason: str
    detail: str
    topic: str


@dataclass
class Screen:
    """Checks an incoming event message.

    Args:
        max_payload: largest accepted payload (one event) in bytes.
        max_batch: largest accepted batch frame in bytes.
        devices: allowed device ids (None: any device).
        strict_bodies: check bodies of known types against their schema.
    """

    max_payload: int = 256 * 1024
    max_batch: int = 4 * 2**20
    devices: frozenset[str] | None = None
    strict_bodies: bool = True
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
            reason = "malformed" if str(exc).startswith("malformed JSON") else "schema"
            return self._reject(reason, str(exc), topic)
        if (env.store, env.kind, env.dev, env.type if expect[3] is not None else None) != expect:
            return self._reject("topic_mismatch", f"envelope {env.store}/{env.kind}/{env.dev}/"
                                f"{env.type} arrived on {topic}", topic)
        if self.devices is not None and env.dev not in self.devices:
            return self._reject("unknown_device", f"device {env.dev!r} is not enrolled "
                                "(add it to the device list)", topic)
        etype = REGISTRY.get(env.type)
        if etype is not None:
            if int(etype.prio) != env.prio:
                return self._reject("schema", f"{env.type} must have prio {int(etype.prio)}, "
                                    f"got {env.prio}", topic)
            if self.strict_bodies:
                validate_body(env.type, env.body)
        else:
            self.counts["unknown_type"] += 1
        return env

    def _reject(self, reason: str, detail: str, topic: str) -> Rejection:
        self.counts[reason] += 1
        log.warning("rejected message on %s: %s: %s", topic, reason, detail[:200])
        return Rejection(reason, detail, topic)


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
    """Highest contiguous seq held for one device, with the seqs held above it.

    Args:
        wm: the persisted watermark (every seq <= wm is held or accounted for).
        above: seqs held above ``wm`` (from storage, at start-up).
    """

    def __init__(self, wm: int = 0, above: Iterable[int] = ()):
        self.wm = wm
        self.above: set[int] = {s for s in above if s > wm}
        self._advance()

    def add(self, seq: int) -> None:
        if seq > self.wm:
            self.above.add(seq)
            self._advance()

    def add_range(self, lo: int, hi: int) -> None:
        """Account for every seq in ``[lo, hi]`` (only the part above the watermark)."""
        lo = max(lo, self.wm + 1)
        if hi < lo:
            return
        if lo == self.wm + 1:
            self.wm = hi
            self.above = {s for s in self.above if s > hi}
            self._advance()
        else:
            self.above.update(range(lo, hi + 1))

    def _advance(self) -> None:
        while self.wm + 1 in self.above:
            self.wm += 1
            self.above.discard(self.wm)

    def holes(self, limit: int = 10) -> list[tuple[int, int]]:
        """Missing seq ranges between the watermark and the highest seq held."""
        if not self.above:
            return []
        out, prev = [], self.wm
        for s in sorted(self.above):
            if s > prev + 1:
                out.append((prev + 1, s - 1))
                if len(out) >= limit:
                    break
            prev = s
        return out
