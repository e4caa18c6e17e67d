"""Dedupe, conflict and placeholder decisions: one implementation for every receiver.

The gateway store (raw payload bytes) and the store server (JSON bodies) both keep one row per
``(dev, seq)``.  For an incoming event they must tell apart:

* ``NEW``: the seq is not held: store it;
* ``DUPLICATE``: the same event again (a retry, a replay, a second gateway): count, drop;
* ``CONFLICT``: the seq is held with *different* content (a device whose outbox was reset
  reuses seqs): count, log, keep the first;
* ``FILL``: the seq is held as a *placeholder* (a coalesced or salvaged event accounted for
  it): the receiver decides (the gateway keeps the real event, the store server counts a
  duplicate, the summary having been counted as delivered).

A coalesced (``telemetry.coalesced``) or salvaged (``outbox.salvaged``) event declares seq
ranges it accounts for; the seqs of those ranges above the watermark that are not held get
placeholders.  :func:`plan_batch` decides all of this for one device's batch from one read of
what is held (:func:`lookup_spans` says which seq ranges that read must cover).

Pure functions: no I/O, no clock.  Seqs are positive integers.
"""
from __future__ import annotations

import json
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from storeedge.events import Envelope
from storeedge.ingest import declared_ranges


class _Absent:
    """Marker for "no row for this seq" (``None`` is a placeholder row)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""What :func:`judge` is given for a seq with no row."""

MERGE_GAP = 256
"""Ranges to read closer than this many seqs are read as one (a few extra rows beat a longer
query)."""


class Verdict(str, Enum):
    """What an incoming event is, given what is held for its seq."""

    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    FILL = "fill"


class Span(NamedTuple):
    """Seqs ``first..last`` (both included)."""

    first: int
    last: int


class Candidate(NamedTuple):
    """An incoming event and the content a receiver stores and compares (bytes or JSON)."""

    env: Envelope
    content: Any


class Claim(NamedTuple):
    """Placeholders to store: seqs that ``env`` (coalesced or salvaged) accounts for."""

    env: Envelope
    seqs: list[int]


class Plan(NamedTuple):
    """What to do with one device's batch: its events by :class:`Verdict` (``fresh`` are the
    ``NEW`` ones), in arrival order, and the placeholders to store."""

    fresh: list[Candidate]
    duplicates: list[Candidate]
    conflicts: list[Candidate]
    fills: list[Candidate]
    claims: list[Claim]


def judge(stored: Any, incoming: Any, same: Callable[[Any, Any], bool] | None = None) -> Verdict:
    """The verdict for an incoming event's content.

    Args:
        stored: what is held for its seq: :data:`ABSENT` (no row), ``None`` (a placeholder)
            or the stored content.
        incoming: the incoming content (same kind as ``stored``).
        same: content equality (default ``==``; :func:`same_json` for JSON text).
    """
    if stored is ABSENT:
        return Verdict.NEW
    if stored is None:
        return Verdict.FILL
    equal = same(stored, incoming) if same is not None else stored == incoming
    return Verdict.DUPLICATE if equal else Verdict.CONFLICT


def same_json(stored: str, incoming: str) -> bool:
    """Equal JSON documents (key order and spacing aside)."""
    return stored == incoming or json.loads(stored) == json.loads(incoming)


def clip(first: int, last: int, floor: int) -> Span | None:
    """The part of ``first..last`` above watermark ``floor`` (None when nothing is left)."""
    first = max(first, floor + 1)
    return Span(first, last) if first <= last else None


def missing(first: int, last: int, floor: int, held: Mapping[int, Any] | set[int]) -> list[int]:
    """Seqs of ``first..last`` above ``floor`` that are not in ``held``, ascending."""
    span = clip(first, last, floor)
    if span is None:
        return []
    return [s for s in range(span.first, span.last + 1) if s not in held]


def merge(ordered: Iterable[Span], gap: int = 1) -> list[Span]:
    """Spans sorted by ``first`` joined where one starts at most ``gap`` seqs after the last
    ends (1: touching runs only)."""
    out: list[Span] = []
    for span in ordered:
        if out and span.first - out[-1].last <= gap:
            out[-1] = Span(out[-1].first, max(out[-1].last, span.last))
        else:
            out.append(span)
    return out


def spans(seqs: Iterable[int], gap: int = 1) -> list[Span]:
    """Ascending seqs as runs; seqs less than ``gap`` apart join one run (1: exact runs)."""
    return merge((Span(s, s) for s in seqs), gap)


def lookup_spans(envs: Sequence[Envelope], floor: int,
                 ranges_of: Callable[[Envelope], list] = declared_ranges) -> list[Span]:
    """The seq ranges one read must cover to :func:`plan_batch` ``envs``: every event's seq
    and the part above ``floor`` of every range they declare, merged (:data:`MERGE_GAP`)."""
    wanted = [Span(e.seq, e.seq) for e in envs]
    for env in envs:
        wanted += [s for s in (clip(lo, hi, floor) for lo, hi in ranges_of(env)) if s]
    return merge(sorted(wanted), MERGE_GAP)


def plan_batch(batch: Sequence[Candidate], held: dict[int, Any], floor: int, *,
               same: Callable[[Any, Any], bool] | None = None,
               ranges_of: Callable[[Envelope], list] = declared_ranges) -> Plan:
    """Decide one device's batch.

    Events are judged in order (a seq twice in one batch: the second is judged against the
    first); then each fresh event's declared ranges become placeholder claims over the seqs
    above ``floor`` held by nothing, this batch included.

    Args:
        batch: the device's events with their content, in arrival order.
        held: ``seq -> content`` (``None`` for a placeholder) over :func:`lookup_spans`;
            updated in place with what the plan stores.
        floor: the device's watermark (every seq <= floor is held or accounted for).
        same: content equality for :func:`judge`.
        ranges_of: the seq ranges an event declares it accounts for.
    """
    lists: dict[Verdict, list[Candidate]] = {v: [] for v in Verdict}
    for cand in batch:
        verdict = judge(held.get(cand.env.seq, ABSENT), cand.content, same)
        lists[verdict].append(cand)
        if verdict is Verdict.NEW:
            held[cand.env.seq] = cand.content
    claims = []
    for cand in lists[Verdict.NEW]:
        for lo, hi in ranges_of(cand.env):
            seqs = missing(lo, hi, floor, held)
            if seqs:
                held.update(dict.fromkeys(seqs))
                claims.append(Claim(cand.env, seqs))
    return Plan(lists[Verdict.NEW], lists[Verdict.DUPLICATE], lists[Verdict.CONFLICT],
                lists[Verdict.FILL], claims)
