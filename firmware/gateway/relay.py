"""The gateway relay: device broker -> durable store -> store broker, with watermarks both ways.

* Subscribes to every device event on the in-store broker (QoS 1, persistent session,
  ``manual_ack``).  Each message is screened, handed to the store's group commit, and its
  PUBACK is sent only after the commit (rejected messages too, in arrival order, so a bad
  message never blocks the ones behind it).
* After each commit the new per-device watermark is published (retained) on
  ``.../{dev}/ack`` of the in-store broker; devices drop what it covers. Each carries the
  gateway database's ``epoch``, the run's ``gen`` and a counter ``n``: a device ignores a
  watermark older than one it has seen (a stale retained or replayed one).
* A forwarder thread sends each device's events to the store broker oldest first (packed in
  batch frames on ``.../{dev}/batch``, one message per frame, see ``batch.py``), only up to
  the gateway's contiguous committed watermark (per-device order), at most ``forward_window``
  beyond the store's watermark, ``quantum`` per device per round, devices with the most
  urgent events first. Live devices (little held above the store's mark) always send;
  devices with a backlog share ``uplink_window`` events in flight upstream, so a live event
  never waits behind another device's whole backlog, only behind that window.
* The store server's retained watermarks confirm events; ``cmd/replay`` requests and stalls
  (no progress for ``resend_timeout_s``) rewind a device's cursor to re-send.
* Every other ``cmd/{name}`` arriving on the store broker for a device of this store is
  relayed down to the in-store broker (QoS 1, never retained); devices verify signatures.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import NamedTuple
from dataclasses import dataclass, field

from storeedge import topics
from storeedge.batch import encode_batch, pack_batches
from storeedge.ingest import Screen
from storeedge.link import MqttLink, Will, json_payload
from storeedge.core_events import GapUnrecoverable, GatewayStatus
from storeedge.firmware.common.outbox import seal_key_of
from storeedge.firmware.gateway.config import GatewayConfig
from storeedge.firmware.gateway.own import OwnEvents, spool_dir
from storeedge.firmware.gateway.store import Confirm, GatewayStore, Incoming, Lost, Seed

log = logging.getLogger(__name__)
SPOOL_EVERY_S = 1.0     # how often the forwarder looks for spooled own events
COMMANDS_ALL = f"{topics.TOPIC_ROOT}/+/+/+/cmd/#"   # store broker -> devices (and our replay)
STATES_ALL = f"{topics.TOPIC_ROOT}/+/+/+/state"     # devices' retained state (floor, held_from)
MAX_COMMAND_BYTES = 128 * 1024                       # = storeedge.signing.MAX_PAYLOAD_BYTES


class _Take(NamedTuple):
    """One device's rows for this forwarding round."""

    prio: int                 # the most urgent (lowest) priority among them
    rows: list[tuple]         # (seq, prio, type, payload), in seq order
    advance: bool             # move the cursor past them (False: control rows above a full window)


@dataclass
class _Cursor:
    """Forwarding position of one device towards the store."""

    sent: int = 0                 # highest seq published upstream
    progress_at: float = field(default_factory=time.monotonic)
    last_store_wm: int = 0
    control_sent: set[int] = field(default_factory=set)   # sent beyond the window

    def rewind(self, to: int) -> None:
        """Re-send from ``to + 1`` (a stall, a reconnect, a replay request)."""
        self.sent = to
        self.control_sent.clear()
        self.progress_at = time.monotonic()


class Relay:
    """One gateway relay process (see the module docstring).

    Args:
        cfg: the gateway config.
    """

    def __init__(self, cfg: GatewayConfig):
        self.cfg = cfg
        relay = cfg.relay
        self.screen = Screen(max_payload=relay.max_payload_bytes,
                             devices=frozenset(relay.devices) if relay.devices is not None
                             else None)
        self.store = GatewayStore(relay.db_path, keep_confirmed=relay.keep_confirmed,
                                  gather_s=relay.commit_gather_ms / 1000.0,
                                  on_committed=self._publish_acks)
        ident = cfg.device
        self._state_topic = topics.state(ident.store, "gateway", ident.id)
        self.down = MqttLink(f"se-{ident.store}-{ident.id}-in", cfg.link, manual_ack=True,
                             will=Will(self._state_topic, json_payload({"state": "offline"})),
                             on_connect=self._on_down_connect)
        self.up = MqttLink(f"se-{ident.store}-{ident.id}-up", cfg.upstream,
                           on_connect=self._on_up_connect)
        self.cursors: dict[str, _Cursor] = {}
        # disk-loss recovery: devices unknown at start may be seeded from the store's mark
        self._known_at_start = set(self.store.devices)
        self._held_from: dict[str, tuple[str, str, int]] = {}
        self._declared: dict[str, int] = {}
        self._up_since: float | None = None
        self._links: tuple[bool, bool] | None = None
        self._status_at = float("-inf")
        self.own = OwnEvents(self.store, ident.id, ident.store,
                             seal_key_of(cfg.security, ident.id))
        self._spool = spool_dir(relay.db_path)      # events other programs hand the gateway
        self._spool_at = float("-inf")
        self._wake = threading.Condition()
        self._ack_lock = threading.Lock()
        self._ack_n = 0
        self._rewind_all = False
        self._stop = threading.Event()
        self.forwarded = 0
        self.commands_relayed = self.commands_dropped = 0
        self._thread = threading.Thread(target=self._forward_loop, name="forwarder", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect both links and start forwarding."""
        self.down.subscribe(topics.EVENTS_ALL, self._on_event)
        self.down.subscribe(STATES_ALL, self._on_device_state)
        self.up.subscribe(topics.ACKS_ALL, self._on_store_ack)
        self.up.subscribe(COMMANDS_ALL, self._on_store_command, commands=True)
        self._thread.start()
        self.up.start()
        self.down.start()

    def close(self) -> None:
        """Stop forwarding, commit what is queued, disconnect."""
        self._stop.set()
        self._poke()
        self._thread.join(5)
        self.down.stop(final=(self._state_topic, json_payload({"state": "offline"})))
        self.up.stop()
        self.store.close()

    def _poke(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # ------------------------------------------------------------------ device side

    def _on_down_connect(self) -> None:
        self.down.publish(self._state_topic, json_payload({"state": "online"}), retain=True)
        for dev in list(self.store.devices):
            self._publish_ack(dev)

    def _on_event(self, msg) -> None:
        event = self.screen.check(msg.topic, msg.payload)
        mid, qos = msg.mid, msg.qos
        callback = None
        if qos > 0:
            callback = lambda ticket: self.down.ack_after_commit(ticket, mid, qos)  # noqa: E731
        self.store.submit(Incoming(event, msg.payload), callback)

    def _publish_acks(self, moved: set[str]) -> None:
        for dev in moved:
            self._publish_ack(dev)
        self._poke()

    def _publish_ack(self, dev: str) -> None:
        """Publish ``dev``'s watermark (QoS 0, retained) stamped with the store's epoch and
        generation and a counter of this run, so a device can tell a stale retained or
        replayed watermark from a newer one (it ignores those it has seen superseded)."""
        state = self.store.devices.get(dev)
        if state is None or dev == self.own.dev:
            return
        with self._ack_lock:           # counter order = publish order = watermark order
            self._ack_n += 1
            doc = {"seq": state.durable_wm, "epoch": self.store.epoch.epoch,
                   "gen": self.store.epoch.gen, "n": self._ack_n}
            self.down.publish(topics.ack(state.store, state.kind, dev), json_payload(doc),
                              qos=0, retain=True)

    # ------------------------------------------------------------------ store side

    def _on_up_connect(self) -> None:
        with self._wake:
            self._rewind_all = True
            self._wake.notify_all()

    def _on_store_ack(self, msg) -> None:
        parts = topics.parse(msg.topic)
        seq = _seq_of(msg.payload)
        if parts is None or seq is None:
            log.warning("ignoring malformed store watermark on %s", msg.topic)
            return
        state = self.store.devices.get(parts.dev)
        if (parts.dev not in self._known_at_start and parts.store == self.cfg.device.store
                and (state is None or seq > state.mark.wm)):
            # we never held this device (a lost database, or a new gateway): the store has
            # everything up to ``seq``, take it as held so forwarding starts above it and
            # the device, seeing our lower ack, re-sends what it still holds
            self.store.submit(Seed(parts.dev, parts.kind, parts.store, seq))
        elif state is not None and state.hear_confirmation(seq):
            self.store.submit(Confirm(parts.dev, seq))
        self._poke()

    def _on_device_state(self, msg) -> None:
        """A device's retained state: ``held_from`` is the oldest seq it still holds."""
        parts = topics.parse(msg.topic)
        if parts is None or parts.kind == "gateway" or parts.store != self.cfg.device.store:
            return
        try:
            doc = json.loads(msg.payload)
            held_from, floor = doc.get("held_from"), doc.get("floor")
        except (ValueError, AttributeError):
            log.warning("ignoring malformed device state on %s", msg.topic[:120])
            return
        if _is_seq(held_from) and _is_seq(floor) and held_from > 1:
            # only what the device had acknowledged (<= floor) can have been pruned
            with self._wake:
                self._held_from[parts.dev] = (parts.kind, parts.store, min(held_from, floor + 1))
                self._wake.notify_all()

    # ------------------------------------------------------------------ recovery, status

    def _ready(self) -> bool:
        """Connected upstream for ``recovery_wait_s``: the store's retained marks are in."""
        if not self.up.connected.is_set():
            self._up_since = None
            return False
        now = time.monotonic()
        if self._up_since is None:
            self._up_since = now
        return now - self._up_since >= self.cfg.relay.recovery_wait_s

    def _housekeep(self) -> None:
        """Report unrecoverable gaps and the gateway's status (forwarder thread)."""
        if not self._ready():
            return
        with self._wake:
            pending = list(self._held_from.items())
        for dev, (kind, store, held_from) in pending:
            self._declare_lost(dev, kind, store, held_from)
        links = (self.up.connected.is_set(), self.down.connected.is_set())
        now = time.monotonic()
        if now - self._spool_at >= SPOOL_EVERY_S:
            self._spool_at = now
            self.own.emit_spooled(self._spool)
        if links != self._links or now - self._status_at >= self.cfg.relay.status_every_s:
            self._links, self._status_at = links, now
            self.own.emit(self.status_body())

    def _declare_lost(self, dev: str, kind: str, store: str, held_from: int) -> None:
        """Seqs below the device's oldest held one that we neither hold nor had confirmed
        are gone for good: account for them and report them (once per range)."""
        state = self.store.devices.get(dev)
        wm = 0 if state is None else state.mark.wm
        first = max(wm, self._declared.get(dev, 0)) + 1
        last = held_from - 1
        if last < first:
            return
        self._declared[dev] = last
        self.store.submit(Lost(dev, kind, store, first, last))
        self.own.emit(GapUnrecoverable(dev=dev, kind=kind, first=first, last=last,
                                       held_from=held_from))
        log.error("%s: seq %d..%d are held neither here nor on the device (lost gateway "
                  "database): reported as an unrecoverable gap", dev, first, last)

    def status_body(self) -> GatewayStatus:
        """The gateway's health: links, rejection counters, backlog per device."""
        backlog = {dev: max(0, st.mark.wm - st.confirmed)
                   for dev, st in list(self.store.devices.items()) if dev != self.own.dev}
        return GatewayStatus(up=self.up.connected.is_set(), down=self.down.connected.is_set(),
                             rejects=dict(self.store.rejects), backlog=backlog,
                             forwarded=self.forwarded, commands_dropped=self.commands_dropped)

    def _on_replay(self, msg) -> None:
        if msg.retain:
            log.warning("ignoring retained replay command on %s", msg.topic)
            return
        parts = topics.parse(msg.topic)
        try:
            args = json.loads(msg.payload).get("args", {})
            first = int(args["from"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("malformed replay command on %s", msg.topic)
            return
        with self._wake:
            cur = self.cursors.get(parts.dev)
            state = self.store.devices.get(parts.dev)
            if cur is not None and state is not None:
                # the store lacks ``first``: re-send from there even below the confirmed mark
                # (a forged or stale watermark must cost a resend, never an event)
                to = max(0, min(cur.sent, first - 1))
                if state.hear_confirmation(min(state.confirmed, to)):
                    self.store.submit(Confirm(parts.dev, state.confirmed))
                cur.rewind(to)
                log.info("replay of %s from seq %d requested by the store", parts.dev, first)
            self._wake.notify_all()

    # ------------------------------------------------------------------ commands down

    def _on_store_command(self, msg) -> None:
        """Every ``cmd/#`` from the store broker: ``replay`` is ours, the rest is relayed down.

        One subscription (not two overlapping ones) so a replay is handled once.
        """
        parts = topics.parse(msg.topic)
        if parts is not None and parts.channel == "cmd" and parts.rest == "replay":
            self._on_replay(msg)
            return
        self._relay_command(msg, parts)

    def _relay_command(self, msg, parts) -> None:
        """Relay a device command to the in-store broker: QoS 1, never retained, only
        ``se/v1/{our store}/{kind}/{dev}/cmd/{name}``; the device verifies the signature."""
        ok = (not msg.retain and parts is not None and parts.channel == "cmd"
              and parts.store == self.cfg.device.store and "/" not in parts.rest
              and parts.rest != "" and len(msg.payload) <= MAX_COMMAND_BYTES
              and (self.cfg.relay.devices is None or parts.dev in self.cfg.relay.devices))
        if not ok:
            self.commands_dropped += 1
            n = self.commands_dropped
            if n & (n - 1) == 0:               # 1st, 2nd, 4th, 8th...: a flood stays quiet
                log.warning("not relaying command on %s (%d bytes%s; %d dropped so far)",
                            msg.topic[:120], len(msg.payload),
                            ", retained" if msg.retain else "", n)
            return
        self.down.publish(msg.topic, msg.payload, qos=1, retain=False)
        self.commands_relayed += 1

    # ------------------------------------------------------------------ forwarding

    def _forward_loop(self) -> None:
        busy = False
        while not self._stop.is_set():
            with self._wake:
                if not busy:          # a round that sent something is followed at once
                    self._wake.wait(0.05)
                rewind, self._rewind_all = self._rewind_all, False
            busy = False
            try:
                if rewind:
                    self._rewind(None)
                self._housekeep()
                if self.up.connected.is_set():
                    busy = self._forward_round() > 0
            except Exception:
                log.exception("forwarding round failed; retrying")
                self._stop.wait(0.5)

    def _rewind(self, dev: str | None) -> None:
        for name, state in list(self.store.devices.items()):
            if dev is None or name == dev:
                self.cursors.setdefault(name, _Cursor()).rewind(state.confirmed)

    def _forward_round(self) -> int:
        """Publish one round; returns the number of events sent.

        Live devices (at most ``quantum`` events held above the store's mark) are served
        first and always; devices with a backlog share what is left of ``uplink_window``
        (events in flight upstream, all devices together), smallest backlog first. So a
        drain keeps the pipe full while a live event never queues behind more than
        ``uplink_window`` backlog events at the store.
        """
        relay = self.cfg.relay
        devices = [(dev, state, self._cursor(dev, state))
                   for dev, state in list(self.store.devices.items())]
        in_flight = sum(max(0, cur.sent - state.confirmed) for _d, state, cur in devices)
        budget = relay.uplink_window - in_flight
        devices.sort(key=lambda d: d[1].durable_wm - d[1].confirmed)
        batches = []
        for dev, state, cur in devices:
            backlog = state.durable_wm - state.confirmed
            take, used = self._take(dev, state, cur, budget if backlog > relay.quantum else None)
            budget -= used
            if take is not None:
                batches.append(((take.prio, backlog), dev, state, take.rows, take.advance))
        batches.sort(key=lambda b: b[0])
        sent = 0
        for _key, dev, state, rows, advance in batches:
            sent += self._publish_rows(dev, state, rows)
            if advance:
                self.cursors[dev].sent = rows[-1][0]
        self.forwarded += sent
        return sent

    def _take(self, dev: str, state, cur: _Cursor,
              budget: int | None) -> tuple[_Take | None, int]:
        """What one device sends this round (None: nothing) and the events it took from the
        budget; ``budget`` None: a live device, not limited by the uplink window.

        A full per-device window still sends the coalesced/salvaged events above it (they
        account for seqs the store would otherwise wait for), without advancing the cursor.
        """
        relay = self.cfg.relay
        upto = state.durable_wm
        if cur.sent >= upto:
            return None, 0
        room = relay.forward_window - (cur.sent - state.confirmed)
        if room <= 0:
            rows = [r for r in self.store.control_rows(dev, cur.sent, upto)
                    if r[0] not in cur.control_sent]
            cur.control_sent.update(r[0] for r in rows)
            return (_Take(min(r[1] for r in rows), rows, False) if rows else None), 0
        limit = min(room, relay.quantum, relay.uplink_window if budget is None else budget)
        if limit <= 0:
            return None, 0
        rows = self.store.forwardable(dev, cur.sent, upto, limit)
        if not rows:
            return None, 0
        return _Take(min(r[1] for r in rows), rows, True), (0 if budget is None else len(rows))

    def _publish_rows(self, dev: str, state, rows: list[tuple]) -> int:
        """Publish rows ``(seq, prio, type, payload)`` in order; returns the events sent.

        Placeholders (payload None) are accounted for by their summary event and not sent.
        """
        live = [(etype, payload) for _seq, _p, etype, payload in rows if payload is not None]
        limit = self.cfg.relay.batch_bytes
        if limit <= 0:
            for etype, payload in live:
                self.up.publish(topics.event(state.store, state.kind, dev, etype), payload)
        else:
            topic = topics.batch(state.store, state.kind, dev)
            for group in pack_batches([payload for _etype, payload in live], limit):
                self.up.publish(topic, encode_batch(group))
        return len(live)

    def _cursor(self, dev: str, state) -> _Cursor:
        cur = self.cursors.get(dev)
        if cur is None:
            cur = self.cursors[dev] = _Cursor(sent=state.confirmed, last_store_wm=state.confirmed)
        now = time.monotonic()
        if cur.sent <= state.confirmed:
            cur.progress_at = now          # nothing in flight: nothing can be late
        if state.confirmed != cur.last_store_wm:
            cur.last_store_wm = state.confirmed
            cur.progress_at = now
            cur.sent = max(cur.sent, state.confirmed)
        elif cur.sent > state.confirmed and now - cur.progress_at > self.cfg.relay.resend_timeout_s:
            log.info("no confirmation from the store for %s in %.1f s: re-sending from seq %d",
                     dev, now - cur.progress_at, state.confirmed + 1)
            cur.rewind(state.confirmed)
        return cur


def _is_seq(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seq_of(payload: bytes) -> int | None:
    try:
        seq = json.loads(payload)["seq"]
    except (ValueError, KeyError, TypeError):
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None


class GatewayApp:
    """The relay as the runner runs it: start, heartbeat until ``stop``, close.

    Args:
        relay: the (not yet started) relay.
        liveness: where the heartbeat goes (the runner's watchdog sink).
        period_s: seconds between heartbeats.
    """

    def __init__(self, relay: Relay, liveness, period_s: float):
        self.relay, self.liveness, self.period_s = relay, liveness, period_s

    def serve_config(self, config_path: str, restart) -> None:
        """The gateway applies no config change while running (a restart applies it)."""
        return None

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set (a heartbeat every ``period_s``), then close."""
        cfg = self.relay.cfg
        self.relay.start()
        log.info("gateway %s relaying %s -> %s", cfg.device.id, cfg.link.url, cfg.upstream.url)
        try:
            while not stop.wait(self.period_s):
                self.liveness.heartbeat()
        finally:
            self.relay.close()


def build(cfg: GatewayConfig, sink, clock) -> GatewayApp:
    """The gateway app from its config (``AppSpec.build``; ``sink``: liveness only, the
    gateway keeps its events in its own store)."""
    from storeedge.firmware.common.runner import heartbeat_period_s
    return GatewayApp(Relay(cfg), sink, heartbeat_period_s())
