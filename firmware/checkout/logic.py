"""The lane's app logic (no I/O): frame results and POS events in, event bodies out.

:class:`CheckoutLane` keeps the current transaction (started by the POS, by the first pass or
scan, ended by the POS or after ``idle_end_s`` without activity), feeds passes and scans to
the :class:`~storeedge.firmware.checkout.matcher.TransactionMatcher`, turns decided outcomes
into alerts with the :class:`~storeedge.firmware.checkout.alerts.AlertPolicy`, and hands every
event body to ``emit(body, ts)`` (``ts``: wall-clock epoch seconds). Times given to it are on
the monotonic clock; wall time is derived from ``clock`` when an event is made, so a wall
clock jump never changes what matches.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from storeedge.drivers.pos import PosEvent, Rejected
from storeedge.firmware.checkout import events as ev
from storeedge.firmware.checkout.alerts import Alert, AlertPolicy, AlertPolicyParams
from storeedge.firmware.checkout.codes import pos_key
from storeedge.firmware.checkout.config import AlertSection, MatchSection
from storeedge.firmware.checkout.matcher import (Outcome, PosScan, ScanNoteItem,
                                                  TransactionMatcher)
from storeedge.firmware.checkout.pipeline import FrameResult
from storeedge.firmware.checkout.quality import ImageQuality, QualityGate
from storeedge.firmware.checkout.timing import PosTiming

log = logging.getLogger("storeedge.checkout")


@dataclass
class LaneStats:
    """Counters since start."""

    passes: int = 0
    scans: int = 0
    rejected: int = 0
    alerts: list[Alert] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[ScanNoteItem] = field(default_factory=list)
    blind_s: float = 0.0
    transactions: int = 0
    unverified: int = 0
    pos_stalls: int = 0


@dataclass
class LaneOptions:
    """``idle_end_s``: a transaction ends after this long without activity (s);
    ``rejected_every_s``: at most one pos_rejected event per interval (s); ``lane_id``
    prefixes transaction ids; the POS counts as stalled when ``stall_passes`` passes in a
    row found no scan and no POS line came for ``stall_after_s`` (s); ``timing_path``: file
    the learned POS timing is kept in (None: not kept); ``frames_dropped()``: frames the
    camera queue dropped so far (read for the transaction summary)."""

    idle_end_s: float = 90.0
    rejected_every_s: float = 10.0
    lane_id: str = "lane"
    stall_passes: int = 4
    stall_after_s: float = 10.0
    timing_path: str | None = None
    frames_dropped: Callable[[], int] = field(default=lambda: 0)


@dataclass
class _Txn:
    id: str
    matcher: TransactionMatcher
    ending: bool = False
    last_activity: float = 0.0
    counts: dict = field(default_factory=lambda: dict(missed=0, switch=0, nudge=0,
                                                      escalate=0, scans=0))
    blind_s: float = 0.0


class CheckoutLane:
    """Lane logic. ``emit(body, ts)`` receives event dataclasses; ``clock`` maps monotonic
    seconds to wall time; ``policy``: the ``checkout.alerts`` section itself (or the alert
    module's params); ``options.frames_dropped`` is read for the transaction summary."""

    def __init__(self, emit: Callable, clock, *, windows: MatchSection | None = None,
                 policy: AlertSection | AlertPolicyParams | None = None,
                 options: LaneOptions | None = None,
                 timing: PosTiming | None = None):
        self.emit_body, self.clock = emit, clock
        self.windows = windows or MatchSection()
        self.policy = AlertPolicy(policy)
        opts = options or LaneOptions()
        self.opts = opts
        self.idle_end_s, self.rejected_every_s = opts.idle_end_s, opts.rejected_every_s
        self.lane_id = opts.lane_id
        self.timing = timing or PosTiming(path=opts.timing_path)
        self.gate = QualityGate()
        self.last_pos_t: float | None = None
        self.pos_stalled = ""             # the reason while the POS is stalled
        self._silent = 0                  # passes in a row without a scan or any POS line
        self._phantoms_closed = 0
        self._pending: tuple[float, ...] = ()
        self.stats = LaneStats()
        self.txn: _Txn | None = None
        self._n = 0
        self._rej_pending, self._rej_last_emit, self._rej_last = 0, None, None
        self.frames_dropped = opts.frames_dropped

    def wall(self, t: float) -> float:
        """Wall-clock epoch seconds of monotonic time ``t``."""
        return self.clock.time() - self.clock.monotonic() + t

    def _emit(self, body, t: float) -> None:
        self.emit_body(body, self.wall(t))

    def _open(self, t: float, txn_id: str = "") -> _Txn:
        if self.txn is None:
            self._n += 1
            tid = txn_id or f"{self.lane_id}-{int(self.wall(t))}-{self._n}"
            self.txn = _Txn(tid, TransactionMatcher(self.windows, timing=self.timing),
                            last_activity=t)
            self.policy.new_transaction()
            self.stats.transactions += 1
            log.info("transaction %s started", tid)
        return self.txn

    def on_frame(self, res: FrameResult) -> None:
        """Feed a pipeline result."""
        self._pending = res.pending
        if res.quality is not None and self.gate.update(res.quality) is not None:
            q = res.quality
            log.warning("lane image %s%s", "degraded: " if self.gate.reason else "ok again",
                        self.gate.reason)
            self._status(q.t)
        if res.blind is not None:
            b = res.blind
            self.stats.blind_s += b.t1 - b.t0
            log.warning("camera blind for %.2f s", b.t1 - b.t0)
            self._emit(ev.Blind(self.wall(b.t0), self.wall(b.t1), round(b.t1 - b.t0, 3)), b.t1)
            if self.txn is not None:
                self.txn.matcher.add_blind(b.t0, b.t1)
                self.txn.blind_s += b.t1 - b.t0
        for p in res.passes:
            txn = self._open(p.t_start)
            txn.matcher.add_pass(p)
            txn.last_activity = max(txn.last_activity, p.t_end)
            self.stats.passes += 1

    def on_pos(self, item: PosEvent | Rejected) -> None:
        """Feed a POS event or rejection."""
        if isinstance(item, Rejected):
            self._rejected(item.t, item.reason, item.sample)
            return
        self._pos_alive(item.t)
        if item.kind == "txn_start":
            if self.txn is not None and not self.txn.counts["scans"] and not self.txn.ending:
                self.txn.id = item.txn or self.txn.id    # a late start line: same basket
                return
            if self.txn is not None:
                self.txn.ending = True
                self.tick(item.t, flush=True)
            self._open(item.t, item.txn)
        elif item.kind == "txn_end":
            if self.txn is not None:
                self.txn.ending = True
        else:
            self._scan(item)

    def _scan(self, item: PosEvent) -> None:
        try:
            key = pos_key(item.code, item.format)
        except ValueError as exc:
            self._rejected(item.t, str(exc), item.raw[:40])
            return
        txn = self._open(item.t, item.txn)
        txn.matcher.add_scan(PosScan(item.t, key, item.code, item.raw))
        txn.last_activity = max(txn.last_activity, item.t)
        txn.counts["scans"] += 1
        self.stats.scans += 1

    def _rejected(self, t: float, reason: str, sample: str) -> None:
        self.stats.rejected += 1
        self._rej_pending += 1
        self._rej_last = (reason, sample)
        if self._rej_last_emit is None or t - self._rej_last_emit >= self.rejected_every_s:
            self._flush_rejected(t)

    def _flush_rejected(self, t: float) -> None:
        if self._rej_pending:
            reason, sample = self._rej_last
            self._emit(ev.PosRejected(self._rej_pending, self.stats.rejected, reason, sample), t)
            self._rej_pending, self._rej_last_emit = 0, t

    def tick(self, now: float, flush: bool = False) -> None:
        """Decide what is due at monotonic time ``now`` (s)."""
        if self._rej_pending and now - (self._rej_last_emit or 0.0) >= self.rejected_every_s:
            self._flush_rejected(now)
        txn = self.txn
        if txn is None:
            return
        outcomes, notes = txn.matcher.tick(now, flush=flush, pending=self._pending)
        for o in outcomes:
            self._outcome(txn, o, now)
        for n in notes:
            self.stats.notes.append(n)
            self._emit(ev.ScanNote(txn.id, n.kind, n.scan.line, self.wall(n.scan.t)), now)
        idle = now - txn.last_activity >= self.idle_end_s
        if (txn.ending or idle) and txn.matcher.idle:
            self._close(txn, now)
        elif idle and not flush:
            self.tick(now, flush=True)

    def _pos_alive(self, t: float) -> None:
        """A valid POS line arrived at ``t`` (s): the POS is not stalled."""
        self.last_pos_t = t if self.last_pos_t is None else max(self.last_pos_t, t)
        self._silent = 0
        if self.pos_stalled:
            log.warning("POS sends lines again")
            self.pos_stalled = ""
            self._status(t)

    def _unverified(self, o: Outcome, now: float) -> bool:
        """True when ``o`` must not be judged: a missed scan while the POS is silent (a
        stall, counted and reported once) or a pass seen while the image was degraded."""
        p = o.item_pass
        if self.gate.overlaps(p.t_start, p.t_end):
            return o.kind != "ok"
        if o.kind != "missed":
            return False
        if self.last_pos_t is not None and self.last_pos_t >= p.t_start:
            self._silent = 0
            return False
        self._silent += 1
        silent_s = now - (self.last_pos_t if self.last_pos_t is not None else p.t_start)
        if not self.pos_stalled and self._silent >= self.opts.stall_passes \
                and silent_s >= self.opts.stall_after_s:
            self.pos_stalled = (f"no POS line for {silent_s:.0f} s while {self._silent} "
                                f"items passed")
            self.stats.pos_stalls += 1
            log.warning("POS stalled: %s", self.pos_stalled)
            self._status(now)
        return bool(self.pos_stalled)

    def status(self) -> ev.LaneStatus:
        """The lane's current status (state, learned POS timing, image quality, counts)."""
        t = self.timing.status(self.windows.pre_s, self.windows.post_s)
        q = self.gate.last or ImageQuality(0.0, 0.0, 0.0)
        phantoms = self._phantoms_closed + (self.txn.matcher.phantoms if self.txn else 0)
        state = "degraded" if self.gate.reason else "pos_stalled" if self.pos_stalled else "ok"
        return ev.LaneStatus(state, self.gate.reason or self.pos_stalled, t.delay_s, t.spread_s,
                             t.close_s, t.samples, round(q.noise_sigma, 2), round(q.luma, 1),
                             phantoms, self.stats.unverified)

    def _status(self, t: float) -> None:
        self._emit(self.status(), t)

    def _outcome(self, txn: _Txn, o: Outcome, now: float) -> None:
        if self._unverified(o, now):
            self.stats.unverified += 1
            o = Outcome("unverified", o.item_pass, o.code, o.scan, o.t)
        self.stats.outcomes.append(o)
        alert = self.policy.decide(o)
        p = o.item_pass
        self._emit(ev.Pass(txn.id, p.id, self.wall(p.t_start), self.wall(p.t_end),
                           [c.key for c in p.codes], o.kind), now)
        if alert is None:
            return
        txn.counts["missed" if o.kind == "missed" else "switch"] += 1
        txn.counts[alert.level] += 1
        self.stats.alerts.append(alert)
        evidence = ev.Evidence(alert.keyframe_jpeg, o.code.text if o.code else None,
                               o.code.format if o.code else None,
                               o.scan.line if o.scan else None,
                               self.wall(p.t_start), self.wall(p.t_end))
        cls = ev.Nudge if alert.level == "nudge" else ev.Escalate
        latency = round(max(0.0, now - p.t_end), 3)
        log.warning("%s: %s on pass %d (code seen %s, POS %s)", alert.level, alert.reason, p.id,
                    evidence.code_seen, evidence.pos_line)
        self._emit(cls(txn.id, alert.reason, alert.incident, p.id, latency, evidence), now)

    def _close(self, txn: _Txn, now: float) -> None:
        c = txn.counts
        self._emit(ev.Transaction(txn.id, txn.matcher.passes, c["scans"], c["missed"],
                                  c["switch"], c["nudge"], c["escalate"], round(txn.blind_s, 3),
                                  int(self.frames_dropped())), now)
        log.info("transaction %s closed: %s", txn.id, c)
        self.txn = None
        self._phantoms_closed += txn.matcher.phantoms
        try:
            self.timing.save()
        except OSError as exc:
            log.warning("POS timing not saved: %s", exc)
        self._status(now)
