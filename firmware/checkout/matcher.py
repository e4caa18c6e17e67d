"""Per-transaction matching of item passes to POS scans (wraps the scan-match kernel).

Each pass becomes one *slot* per distinct code seen on it (a stacked pair of items shows two
codes and needs two scans) or one slot with no code. Slots and scans are matched with
:func:`storeedge.native.scan_match.match_scans`; a slot is decided once its window has
closed (``t_scan_out + post_s``), a scan once ``scan_grace_s`` passed without a pass taking it.
Scans inside a blind interval (plus ``post_s``) are never reported as "no pass".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from storeedge.firmware.checkout.config import MatchSection
from storeedge.firmware.checkout.timing import PosTiming, Window
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
    weak: tuple[CodeSeen, ...] = ()       # codes read only once: evidence, never a slot


class _Recent(NamedTuple):
    """A decided slot without its scan, kept to learn from a same-code scan arriving late."""

    t_scan_in: float
    t_scan_out: float
    key: str


@dataclass
class TransactionMatcher:
    """Open slots and scans of one transaction; :meth:`tick` decides what is due.

    ``windows``: the ``checkout.match`` config section (pre/post/double/grace windows in s,
    ``min_reads``: reads of a code across frames before it may create or change a slot; a
    single read is a possible misread, evidence only).
    """

    windows: MatchSection = field(default_factory=MatchSection)
    slots: list[_Slot] = field(default_factory=list)
    scans: list[PosScan] = field(default_factory=list)
    used: list[PosScan] = field(default_factory=list)
    blind: list[tuple[float, float]] = field(default_factory=list)
    passes: int = 0
    timing: PosTiming = field(default_factory=PosTiming)
    phantoms: int = 0
    recent: list[_Recent] = field(default_factory=list)
    _pending: tuple[float, ...] = ()

    def add_pass(self, p: ItemPass) -> None:
        self.passes += 1
        n = self.windows.min_reads
        weak = tuple(c for c in p.codes if c.reads < n)
        codes = [c for c in p.codes if c.reads >= n] or [None]
        self.slots.extend(_Slot(p, c, weak) for c in codes)

    def add_scan(self, s: PosScan) -> None:
        self.scans.append(s)
        # a same-code line for a pass already decided: learn from it, unless an undecided
        # pass or an item on its way could be the one it belongs to (ambiguous)
        starts = [x.item_pass.t_scan_in for x in self.slots] + list(self._pending)
        if any(t0 - self.windows.pre_s <= s.t for t0 in starts):
            return
        for r in self.recent:
            if r.key == s.key and s.t >= r.t_scan_in - self.windows.pre_s:
                self.timing.add(r.t_scan_in, r.t_scan_out, s.t)
                self.recent.remove(r)
                break

    def window(self) -> Window:
        """The current (learned) match window."""
        return self.timing.window(self.windows.pre_s, self.windows.post_s)

    def add_blind(self, t0: float, t1: float) -> None:
        self.blind.append((t0, t1))

    @property
    def idle(self) -> bool:
        """Nothing left to decide."""
        return not self.slots and not self.scans

    def tick(self, now: float, flush: bool = False, pending: tuple[float, ...] = ()
             ) -> tuple[list[Outcome], list[ScanNoteItem]]:
        """Decide every slot and scan whose window closed by ``now`` (all if ``flush``).
        ``pending``: scan-zone entry times (s) of items still on their way to the bag."""
        w, win = self.windows, self.window()
        self._pending = pending
        pairs = self._match(win)
        outcomes, notes = [], []
        keep = []
        self.recent = [r for r in self.recent if now - r.t_scan_out <= self.timing.p.max_lag_s]
        for i, slot in enumerate(self.slots):
            scan = self.scans[pairs[i]] if pairs[i] >= 0 else None
            due = now >= slot.item_pass.t_scan_out + win.close_s
            if flush or (due and not self._held(slot, scan, win, pending, now)):
                outcomes.append(self._decide(slot, scan, now))
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

    def _held(self, slot: _Slot, scan: PosScan | None, win: Window,
              pending: tuple[float, ...], now: float) -> bool:
        """Keep ``slot`` open a little longer: the scan it would take lies beyond its core
        and fits an item still on its way (that item's own scan, late); at most until the
        longest window (``max_close_s``)."""
        p = slot.item_pass
        if scan is None or now >= p.t_scan_out + self.timing.p.max_close_s:
            return False
        if scan.t <= p.t_scan_out + win.shift_s:
            return False
        return any(t_in + win.shift_s - win.pre_s <= scan.t for t_in in pending)

    def _decide(self, slot: _Slot, scan: PosScan | None, now: float) -> Outcome:
        """Close ``slot`` with ``scan`` (or none): learn timing, count phantom codes."""
        p = slot.item_pass
        self.phantoms += sum(1 for c in slot.weak if scan is None or c.key != scan.key)
        if scan is not None:
            self.used.append(scan)
            if slot.code is not None and slot.code.key == scan.key:
                self.timing.add(p.t_scan_in, p.t_scan_out, scan.t)
        elif slot.code is not None:
            self.recent.append(_Recent(p.t_scan_in, p.t_scan_out, slot.code.key))
        code = slot.code
        if code is None and scan is not None:
            code = next((c for c in slot.weak if c.key == scan.key), None)   # confirmed
        return Outcome(_kind(slot, scan), p, code, scan, now)

    def _match(self, win: Window) -> np.ndarray:
        if not self.slots:
            return np.zeros(0, np.int32)
        w = self.windows
        r = match_scans([s.item_pass.t_scan_in + win.shift_s for s in self.slots],
                        [s.item_pass.t_scan_out + win.shift_s for s in self.slots],
                        [code_key(s.code.key) if s.code else -1 for s in self.slots],
                        [s.t for s in self.scans], [code_key(s.key) for s in self.scans],
                        pre_s=win.pre_s, post_s=win.post_s, double_s=w.double_s)
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
