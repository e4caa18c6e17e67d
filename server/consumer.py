"""The store server's consumer: shared subscription -> idempotent sink -> watermarks.

* Subscribes ``$share/{group}/se/v1/+/+/+/evt/#`` and ``.../batch`` (several events of one
  device in one frame, from the gateway) so several instances split the load.
* Screens each message or batch element (malformed, schema, oversized, topic mismatch:
  counted, acknowledged).  A batch commits in one transaction and is acknowledged once.
* Inserts in group commits with ``UNIQUE(dev, seq)``; duplicates are counted, not stored;
  a seq reused with different content is a conflict (counted, the first one kept).
* After each commit, publishes each touched device's watermark (highest contiguous seq
  stored) retained on ``.../{dev}/ack``; the gateway keeps everything above it.
* A hole in seq that persists for ``replay_after_s`` is recorded in ``gaps`` and a replay is
  requested with the command ``.../{dev}/cmd/replay``.  Seqs that a device declares gone for
  good (``outbox.salvaged``) are recorded as ``lost`` gaps and stop blocking the watermark.  Seqs a gateway
  reports gone for good (``gateway.gap_unrecoverable``, sealed by the gateway: it lost its
  database after acknowledging them and the device pruned them) become ``unrecoverable`` gaps.
* End-to-end seals: with ``security.e2e_master`` every envelope's seal is checked against the
  sending device's derived key; an altered, reordered or invented event (``bad_seal``) or an
  unsealed one (``unsealed``, accepted only with ``security.insecure``) is rejected, counted
  and recorded in the ``integrity`` table.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Iterator

from storeedge import dedupe, durable, topics
from storeedge.events import Envelope
from storeedge.ingest import INTEGRITY_REASONS, Rejection, Screen, declared_ranges
from storeedge.link import MqttLink, json_payload
from storeedge.seal import KeyRing, load_master
from storeedge.server.config import StoreServerConfig
from storeedge.server.db import (MAX_INTEGRITY_ROWS, Integrity, Row, StoreDB,
                                 open_store_db)
from storeedge.server.exc import SecurityConfigError

log = logging.getLogger(__name__)


class StoreServer:
    """One store-server instance.

    Args:
        cfg: the store-server config.
    """

    def __init__(self, cfg: StoreServerConfig):
        self.cfg = cfg
        srv = cfg.server
        keyring = _keyring(cfg)
        self.db: StoreDB = open_store_db(srv.db)
        self.screen = Screen(max_payload=srv.max_payload_bytes, max_batch=srv.max_batch_bytes,
                             keyring=keyring, allow_unsealed=cfg.security.insecure)
        self._integrity_rows = self.db.integrity_rows()
        self.link = MqttLink(f"se-store-{srv.id}", cfg.link, manual_ack=True,
                             on_connect=self._republish)
        self.committer = durable.GroupCommitter(self.db.conn, self._apply, name="store-writer",
                                                transactions=self.db.transactions(),
                                                lock=self.db.lock,
                                                after_commit=self._after_commit)
        self._touched: dict[str, tuple[str, str, int]] = {}
        self._reported: dict[str, tuple[str, str]] = {}   # devices a gateway reported gaps of
        self._known: set[str] = set()
        self._holes: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self.stored = self.duplicates = 0
        self._thread = threading.Thread(target=self._housekeeping, name="store-housekeeping",
                                        daemon=True)

    def start(self) -> None:
        group = self.cfg.server.share_group
        self.link.subscribe(f"$share/{group}/{topics.EVENTS_ALL}", self._on_event)
        self.link.subscribe(f"$share/{group}/{topics.BATCHES_ALL}", self._on_batch)
        self.link.start()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.link.stop()
        self.committer.close()
        self.db.close()

    # ------------------------------------------------------------------ receiving

    def _on_event(self, msg) -> None:
        self._submit(self.screen.check(msg.topic, msg.payload), msg)

    def _on_batch(self, msg) -> None:
        self._submit(self.screen.check_batch(msg.topic, msg.payload), msg)

    def _submit(self, item: Envelope | Rejection | list, msg) -> None:
        """Queue one event (or a batch's list of them); PUBACK after its commit."""
        mid, qos = msg.mid, msg.qos
        callback = None
        if qos > 0:
            callback = lambda ticket: self.link.ack_after_commit(ticket, mid, qos)  # noqa: E731
        self.committer.submit(item, callback)

    def _apply(self, _conn, items: list) -> list:
        now = time.time()
        by_dev: dict[str, list[Envelope]] = {}
        for item in _flatten(items):
            if isinstance(item, Rejection):
                self.db.count_reject(item.reason)
                if item.reason in INTEGRITY_REASONS:
                    self._record_integrity(item, now)
            else:
                by_dev.setdefault(item.dev, []).append(item)
        for dev, envs in by_dev.items():
            self._store_device(dev, envs, now)
            wm = self.db.advance_watermark(dev)
            self.db.resolve_gaps(dev, wm, now)
            self._touched[dev] = (envs[0].kind, envs[0].store, wm)
        reported, self._reported = self._reported, {}
        for dev, (kind, store) in reported.items():
            wm = self.db.advance_watermark(dev)
            self.db.resolve_gaps(dev, wm, now)
            self._touched[dev] = (kind, store, wm)
        return [None] * len(items)

    def _store_device(self, dev: str, envs: list[Envelope], now: float) -> None:
        """Insert one device's events of this batch: one read of what is held decides the
        duplicates (counted), conflicts (counted, reported) and placeholders."""
        if dev not in self._known:
            self.db.ensure_device(dev, envs[0].kind, envs[0].store)
            self._known.add(dev)
        # the watermark only clips declared ranges: not read for a batch without any
        floor = self.db.watermark(dev) if any(map(declared_ranges, envs)) else 0
        held = self.db.held(dev, dedupe.lookup_spans(envs, floor))
        batch = [dedupe.Candidate(e, json.dumps(e.body, separators=(",", ":"))) for e in envs]
        plan = dedupe.plan_batch(batch, held, floor, same=dedupe.same_json)
        self._count_repeats(dev, plan)
        rows = [Row(c.env.dev, c.env.seq, c.env.kind, c.env.store, c.env.type, c.env.prio,
                    c.env.ts, now, c.content) for c in plan.fresh]
        self.db.insert_events(rows)
        self.stored += len(rows)
        for claim in plan.claims:
            self._claim(claim, now)
        for cand in plan.fresh:
            if cand.env.type == "gateway.gap_unrecoverable" and cand.env.kind == "gateway":
                self._unrecoverable(cand.env, now)

    def _count_repeats(self, dev: str, plan: dedupe.Plan) -> None:
        """Count a plan's duplicates and conflicts.  An event whose seq a summary already
        accounted for (a placeholder, ``fills``) is a duplicate here: the summary was counted
        as its delivery."""
        for cand in plan.conflicts:
            self.db.count(dev, "conflicts", 1)
            log.error("device %s reused seq %d with different content: kept the first",
                      dev, cand.env.seq)
        repeats = len(plan.duplicates) + len(plan.fills)
        if repeats:
            self.db.count(dev, "duplicates", repeats)
            self.duplicates += repeats

    def _unrecoverable(self, env: Envelope, now: float) -> None:
        """A gateway's report of seqs of a device of its store that no one holds any more:
        recorded as an ``unrecoverable`` gap over the seqs we lack, placeholders for them."""
        body = env.body
        dev, kind, first, last = (body.get(k) for k in ("dev", "kind", "first", "last"))
        if not (isinstance(dev, str) and isinstance(kind, str) and isinstance(first, int)
                and isinstance(last, int) and 1 <= first <= last):
            log.warning("malformed gap report from gateway %s seq %d", env.dev, env.seq)
            return
        if dev not in self._known:
            self.db.ensure_device(dev, kind, env.store)
            self._known.add(dev)
        floor = self.db.watermark(dev)
        span = dedupe.clip(first, last, floor)
        have = self.db.held(dev, [span]) if span else {}
        missing = dedupe.missing(first, last, floor, have)
        for a, b in dedupe.spans(missing):
            self.db.record_unrecoverable(dev, a, b, now)
            log.error("gateway %s reports %s seq %d..%d gone for good (lost gateway "
                      "database): recorded as unrecoverable", env.dev, dev, a, b)
        self.db.insert_events([Row(dev, seq, kind, env.store, "placeholder", 3, env.ts, now,
                                   None) for seq in missing])
        self._reported[dev] = (kind, env.store)

    def _record_integrity(self, item: Rejection, now: float) -> None:
        """A seal failure as an ``integrity`` row (bounded: past the cap only counted)."""
        if self._integrity_rows >= MAX_INTEGRITY_ROWS:
            return
        self._integrity_rows += 1
        self.db.record_integrity(Integrity(item.dev or "?", item.seq or 0, item.reason,
                                           item.detail[:300], item.topic[:200], 1, now, now))

    def _claim(self, claim: dedupe.Claim, now: float) -> None:
        """Placeholders for seqs covered by a coalesced event or lost in a salvage.

        A claim holds only seqs above the device's watermark and not stored (a salvage report
        lists everything the device no longer holds, most of it delivered long ago).
        """
        env = claim.env
        if env.type == "outbox.salvaged":
            for first, last in dedupe.spans(claim.seqs):
                self.db.record_gap(env.dev, first, last, "lost", now)
                log.error("device %s reports seq %d..%d lost for good (outbox salvage)",
                          env.dev, first, last)
        self.db.insert_events([Row(env.dev, seq, env.kind, env.store, "placeholder", 3, env.ts,
                                   now, None) for seq in claim.seqs])

    def _after_commit(self, _outcomes) -> None:
        touched, self._touched = self._touched, {}
        for dev, (kind, store, wm) in touched.items():
            self.link.publish(topics.ack(store, kind, dev), json_payload({"seq": wm}),
                              retain=True)

    # ------------------------------------------------------------------ housekeeping

    def _republish(self) -> None:
        """Re-publish every watermark (after a connect: a broker restart loses retained ones)."""
        for dev, kind, store, wm in self.db.watermarks():
            self.link.publish(topics.ack(store, kind, dev), json_payload({"seq": wm}),
                              retain=True)

    def _housekeeping(self) -> None:
        last_republish = time.monotonic()
        while not self._stop.wait(0.5):
            try:
                self._check_holes()
                if time.monotonic() - last_republish > self.cfg.server.republish_s:
                    last_republish = time.monotonic()
                    if self.link.connected.is_set():
                        self._republish()
            except Exception:
                log.exception("housekeeping failed")

    def _check_holes(self) -> None:
        now = time.monotonic()
        seen = set()
        for dev, kind, store, wm in self.db.watermarks():
            above = self.db.seqs_above(dev, wm, limit=1)
            if not above:
                continue
            if above[0] == wm + 1:
                # Not a hole: another instance committed wm+1 concurrently and neither
                # transaction saw the other's row. Recompute and publish.
                self._refresh_watermark(dev, kind, store)
                continue
            key = (dev, wm + 1)
            seen.add(key)
            first_seen = self._holes.setdefault(key, now)
            if now - first_seen >= self.cfg.server.replay_after_s:
                self._request_replay(dev, kind, store, wm + 1, above[0] - 1)
                self._holes[key] = now     # ask again after another period if still open
        for key in list(self._holes):
            if key not in seen:
                del self._holes[key]

    def _refresh_watermark(self, dev: str, kind: str, store: str) -> None:
        with self.db.lock:
            self.committer.txn.begin()
            try:
                wm = self.db.advance_watermark(dev)
                self.db.resolve_gaps(dev, wm, time.time())
                self.committer.txn.commit()
            except Exception:
                self.committer.txn.rollback()
                raise
        self.link.publish(topics.ack(store, kind, dev), json_payload({"seq": wm}), retain=True)

    def _request_replay(self, dev: str, kind: str, store: str, first: int, last: int) -> None:
        with self.db.lock:
            self.committer.txn.begin()
            try:
                self.db.record_gap(dev, first, last, "hole", time.time())
                self.committer.txn.commit()
            except Exception:
                self.committer.txn.rollback()
                raise
        log.warning("hole in %s: seq %d..%d missing; requesting a replay", dev, first, last)
        cmd = {"id": str(uuid.uuid4()), "by": f"store-server/{self.cfg.server.id}",
               "args": {"from": first, "to": last}}
        self.link.publish(topics.command(store, kind, dev, "replay"), json_payload(cmd))


def _keyring(cfg: StoreServerConfig) -> KeyRing | None:
    """The device keys from ``security.e2e_master`` (None: insecure, seals not checked).

    Raises:
        SealKeyError: the master file is missing, unreadable, not 0600 or too short.
        SecurityConfigError: no master and not ``security.insecure``.
    """
    sec = cfg.security
    if sec.insecure:
        log.warning("security.insecure: unsealed events are stored%s",
                    "" if sec.e2e_master else " and seals are not checked (no e2e_master)")
    if not sec.e2e_master:
        if not sec.insecure:        # the config check refuses this; a hand-built config too
            raise SecurityConfigError("security.e2e_master is required unless "
                                      "security.insecure is true")
        return None
    return KeyRing(load_master(sec.e2e_master))


def _flatten(items: list) -> Iterator[Envelope | Rejection]:
    """Committer items in order, a batch's list of elements expanded in place."""
    for item in items:
        if isinstance(item, list):
            yield from item
        else:
            yield item

