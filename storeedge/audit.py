"""Audit hash chain: every door event carries a link to the one before it.

Each event body has a ``chain`` object ``{"i": n, "prev": hex, "h": hex, "t": epoch_s}``::

    h_n = SHA-256( prev_n || canonical({"dev", "i", "t", "type", "body without chain"}) )
    prev_n = h_(n-1)         (prev_0 = SHA-256(b"storeedge-door-chain-v1" + dev))

``canonical`` is compact JSON with sorted keys.  The store server calls :func:`verify_chain`
with the events it received (in any order) and learns which indexes are missing, which events
were altered and where the chain breaks.  A removed *last* event can only be detected when
the caller passes ``expected_last`` (e.g. from the device's latest heartbeat) or from the
envelope ``seq`` gap, which the server checks separately.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

CHAIN_CONTEXT = b"storeedge-door-chain-v1"
DOOR_PREFIX = "door."


@dataclass
class ChainLink:
    """One link: index ``i`` (0, 1, 2, ...), ``prev`` and ``h`` (64 hex chars), ``t`` (epoch s)."""

    i: int
    prev: str
    h: str
    t: float


def canonical(obj: Any) -> bytes:
    """Compact JSON with sorted keys, UTF-8: the bytes the chain hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def genesis(dev: str) -> str:
    """The ``prev`` of link 0 for device ``dev`` (hex)."""
    return hashlib.sha256(CHAIN_CONTEXT + dev.encode("utf-8")).hexdigest()


def link_hash(dev: str, i: int, prev: str, etype: str, t: float, body: dict) -> str:
    """The hash of one event (``body`` without its ``chain`` key), hex."""
    content = {k: v for k, v in body.items() if k != "chain"}
    data = canonical({"dev": dev, "i": i, "t": t, "type": etype, "body": content})
    return hashlib.sha256(bytes.fromhex(prev) + data).hexdigest()


def make_link(dev: str, i: int, prev: str, etype: str, t: float, body: dict) -> ChainLink:
    """The :class:`ChainLink` for an event about to be emitted."""
    t = round(float(t), 6)
    return ChainLink(i=i, prev=prev, h=link_hash(dev, i, prev, etype, t, body), t=t)


@dataclass(frozen=True)
class ChainEvent:
    """What :func:`verify_chain` needs from one received event."""

    dev: str
    type: str
    body: dict
    seq: int | None = None


@dataclass
class ChainReport:
    """Result of :func:`verify_chain`.

    ``missing``: chain indexes never received (removed events); ``altered``: indexes whose
    content does not hash to the stored ``h``; ``broken``: indexes whose ``prev`` does not match
    the previous event's ``h`` (an event replaced or re-inserted); ``duplicates``: identical
    re-sends (harmless); ``conflicts``: two different events claiming one index;
    ``unchained``: door events without a readable ``chain`` (position in input);
    ``skipped``: events of other types (``device.*``), which are not part of the chain.
    """

    dev: str | None
    checked: int = 0
    first: int | None = None
    last: int | None = None
    missing: list[int] = field(default_factory=list)
    altered: list[int] = field(default_factory=list)
    broken: list[int] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[int] = field(default_factory=list)
    unchained: list[int] = field(default_factory=list)
    skipped: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is missing, altered, broken, conflicting or unchained."""
        return not (self.missing or self.altered or self.broken or self.conflicts
                    or self.unchained)

    def summary(self) -> str:
        if self.ok:
            return f"chain ok: {self.checked} events, links {self.first}..{self.last}"
        parts = [f"{name} {getattr(self, name)[:10]}" for name in
                 ("missing", "altered", "broken", "conflicts", "unchained") if getattr(self, name)]
        return "chain NOT ok: " + "; ".join(parts)


def _as_chain_event(ev: Any) -> ChainEvent:
    if isinstance(ev, ChainEvent):
        return ev
    if isinstance(ev, dict):
        return ChainEvent(ev["dev"], ev["type"], ev["body"], ev.get("seq"))
    return ChainEvent(ev.dev, ev.type, ev.body, getattr(ev, "seq", None))


def _read_link(body: Any) -> ChainLink | None:
    try:
        c = body["chain"]
        link = ChainLink(int(c["i"]), str(c["prev"]), str(c["h"]), float(c["t"]))
        bytes.fromhex(link.prev), bytes.fromhex(link.h)
        return link if link.i >= 0 else None
    except (KeyError, TypeError, ValueError):
        return None


def verify_chain(events: Iterable[Any], *, expected_first: int | None = 0,
                 expected_last: int | None = None) -> ChainReport:
    """Check the hash chain of one device's door events.

    Args:
        events: one device's envelopes (objects with ``dev``, ``type``, ``body``), dicts with
            those keys (decoded envelope JSON) or :class:`ChainEvent`; any order, duplicates
            allowed; types not starting with ``door.`` are skipped.
        expected_first: the first index the caller should hold (0 = from the device's first
            event; None when older events were pruned on purpose).
        expected_last: the device's latest index if known (detects a removed tail).
    """
    by_index: dict[int, tuple[ChainEvent, ChainLink]] = {}
    report = ChainReport(dev=None)
    for pos, raw in enumerate(events):
        try:
            ev = _as_chain_event(raw)
        except (KeyError, AttributeError, TypeError):
            report.unchained.append(pos)
            continue
        if not str(ev.type).startswith(DOOR_PREFIX):
            report.skipped += 1          # device.started, device.command...: not chained
            continue
        report.dev = report.dev or ev.dev
        link = _read_link(ev.body)
        if link is None or ev.dev != report.dev:
            report.unchained.append(pos)
            continue
        _add(report, by_index, ev, link)
    _check_links(report, by_index, expected_first, expected_last)
    return report


def _add(report: ChainReport, by_index: dict, ev: ChainEvent, link: ChainLink) -> None:
    report.checked += 1
    if link.i in by_index:
        old_ev, old_link = by_index[link.i]
        if old_link == link and canonical(old_ev.body) == canonical(ev.body):
            report.duplicates += 1
        elif link.i not in report.conflicts:
            report.conflicts.append(link.i)
        return
    by_index[link.i] = (ev, link)


def _check_links(report: ChainReport, by_index: dict, expected_first: int | None,
                 expected_last: int | None) -> None:
    if not by_index:
        return
    indexes = sorted(by_index)
    report.first, report.last = indexes[0], indexes[-1]
    lo = report.first if expected_first is None else min(expected_first, report.first)
    hi = max(report.last, expected_last if expected_last is not None else report.last)
    report.missing = [i for i in range(lo, hi + 1) if i not in by_index]
    for i in indexes:
        ev, link = by_index[i]
        if link_hash(ev.dev, i, link.prev, ev.type, link.t, ev.body) != link.h:
            report.altered.append(i)
        if i == 0 and link.prev != genesis(ev.dev):
            report.broken.append(i)
        elif i - 1 in by_index and by_index[i - 1][1].h != link.prev:
            report.broken.append(i)
