"""Per-transaction matching of item passes to POS scans (wraps the scan-match kernel).

Each pass becomes one *slot* per distinct code seen on it (a stacked pair of items shows two
codes and needs two scans) or one slot with no code. Slots and scans are matched with
:func:`storeedge.native.scan_match.match_scans`; a slot is decided once its window has
closed (``t_scan_out + post_s``), a scan once ``scan_grace_s`` passed without a pass taking it.
Scans inside a blind interval (plus ``post_s``) are never reported as "no pass".
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from storeedge.firmware.checkout.tracker import CodeSeen, ItemPass
from storeedge.native.scan_match import code_key, match_scans


@dataclass(frozen=True)
class PosScan:
    """A POS scan: ``t`` s on the monotonic clock, item ``key``, decoded ``code``, ``line``
    the raw line (printable, escaped)."""

    t: float
    key: str
    code: str
    line: str


@dataclass(frozen=True)
class Outcome:
    """A decided slot: kind ok/missed/switch; ``t`` s when decided (monotonic)."""

    kind: str
    item_pass: ItemPass
    code: CodeSeen | None
    scan: PosScan | None
    t: float


@dataclass(frozen=True)
class ScanNoteItem:
    """A decided scan without a pass: kind no_pass or double."""

    kind: str
    scan: PosScan


@dataclass
class _Slot:
    item_pass: ItemPass
    code: CodeSeen | None


@dataclass
class MatchWindows:
    """Matching windows, seconds."""

    pre_s: float = 0.6
    post_s: float = 0.8
    double_s: float = 2.0
    scan_grace_s: float = 4.0


@dataclass
class TransactionMatcher:
    """Open slots and scans of one transaction; :meth:`tick` decides what is due."""

    windows: MatchWindows = field(default_factory=MatchWindows)
    slots: list[_Slot] = field(default_factory=list)
    scans: list[PosScan] = field(default_factory=list)
    used: list[PosScan] = field(default_factory=list)
    blind: list[tuple[float, float]] = field(default_factory=list)
    passes: int = 0

    def add_pass(self, p: ItemPass) -> None:
        self.passes += 1
        codes = [c for c in p.codes if c.reads >= 1] or [None]
        self.slots.extend(_Slot(p, c) for c in codes)

    def add_scan(self, s: PosScan) -> None:
        self.scans.append(s)

    def add_blind(self, t0: float, t1: float) -> None:
        self.blind.append((t0, t1))

    @property
    def idle(self) -> bool:
        """Nothing left to decide."""
        return not self.slots and not self.scans

    def tick(self, now: float, flush: bool = False) -> tuple[list[Outcome], list[ScanNoteItem]]:
        """Decide every slot and scan whose window closed by ``now`` (all if ``flush``)."""
        w = self.windows
        pairs = self._match()
        outcomes, notes = [], []
        keep = []
        for i, slot in enumerate(self.slots):
            if flush or now >= slot.item_pass.t_scan_out + w.post_s:
                scan = self.scans[pairs[i]] if pairs[i] >= 0 else None
                outcomes.append(Outcome(_kind(slot, scan), slot.item_pass, slot.code, scan, now))
                if scan is not None:
                    self.used.append(scan)
            else:
                keep.append(slot)
        self.slots = keep
        taken = {id(o.scan) for o in outcomes if o.scan is not None}
        claimed = {id(self.scans[j]) for i, j in enumerate(pairs) if j >= 0}
        rest = []
        for s in self.scans:
            if id(s) in taken:
                continue
            if (flush or now >= s.t + w.scan_grace_s) and id(s) not in claimed:
                note = self._note(s)
                if note is not None:
                    notes.append(note)
                self.used.append(s)
            else:
                rest.append(s)
        self.scans = rest
        return outcomes, notes

    def _match(self) -> np.ndarray:
        if not self.slots:
            return np.zeros(0, np.int32)
        w = self.windows
        r = match_scans([s.item_pass.t_scan_in for s in self.slots],
                        [s.item_pass.t_scan_out for s in self.slots],
                        [code_key(s.code.key) if s.code else -1 for s in self.slots],
                        [s.t for s in self.scans], [code_key(s.key) for s in self.scans],
                        pre_s=w.pre_s, post_s=w.post_s, double_s=w.double_s)
        return r.pass_scan

    def _note(self, s: PosScan) -> ScanNoteItem | None:
        w = self.windows
        if any(a - w.pre_s <= s.t <= b + w.post_s for a, b in self.blind):
            return None
        for o in self.used + self.scans:
            if o is not s and o.key == s.key and 0 <= s.t - o.t <= w.double_s:
                return ScanNoteItem("double", s)
        return ScanNoteItem("no_pass", s)


def _kind(slot: _Slot, scan: PosScan | None) -> str:
    if scan is None:
        return "missed"
    if slot.code is not None and slot.code.key != scan.key:
        return "switch"
    return "ok"
