"""The device side of the event path: outbox + link + sender + commands + watchdog.

Every device app runs one :class:`DeviceService`.  ``emit()`` returns once the event is
durable in the outbox; a sender thread publishes pending events (oldest first, at most
``link.window`` beyond the acknowledged watermark), and re-sends everything above the
watermark after a reconnect or after ``link.resend_timeout_s`` without progress.  The
watermark arrives as a retained message on ``.../ack`` from the next durable holder (the
gateway); events at or below it are marked acknowledged and eventually pruned.

Commands (``.../cmd/{name}``) pass the :class:`~storeedge.firmware.common.cmdgate.CommandGate`
(signature, device, expiry, role, durable counter, rate limit) before a handler runs; ``by``
comes from the signed identity.  The command worker never dies: every emit is guarded, errors
are logged and counted, and refusals are summarised (``device.commands_refused``), never one
event each.
"""
from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from storeedge import __version__
from storeedge.drivers.clock import Clock, SystemClock
from storeedge import topics
from storeedge.firmware.common.cmdgate import QUEUE_MAX, SUMMARY_S, CommandGate
from storeedge.core_events import (CommandsRefused, DeviceCommand,
                                                   DeviceStarted)
from storeedge.events import Envelope
from storeedge.exc import CommandRefused, EventError, OutboxError
from storeedge.link import MqttLink, Will, json_payload
from storeedge.firmware.common.outbox import Identity, Outbox, OutboxStats, seal_key_of
from storeedge.settings import DeviceConfig
from storeedge.firmware.common.runner import notify_alive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """A command received on ``.../cmd/{name}`` (never from a retained message).

    ``by`` and ``role`` come from the signed identity (``unverified:<name>`` and "" for an
    unsigned command in insecure mode).
    """

    name: str
    args: dict
    by: str
    id: str
    role: str = ""


CommandHandler = Callable[[Command], "dict | None"]


class ServiceStatus(NamedTuple):
    """What the console's ``status`` shows about the event path."""

    dev: str
    kind: str
    link: str                 # "connected" / "disconnected"
    connects: int
    outbox: OutboxStats
    sent: int
    resends: int
    commands_refused: int = 0


class AckOrder:
    """Tells a superseded watermark from a newer one (paho's network thread only).

    The gateway stamps each watermark with its database's ``epoch`` (new after a lost
    database), its run's ``gen`` (persisted, one more per start) and a per-run counter ``n``.
    Within the current epoch a watermark with ``(gen, n)`` not above the last one seen is
    stale (a retained value restored by a broker, a replay); so is one from an epoch that an
    other one replaced (a database is never found again once lost). A watermark without a
    stamp (an older gateway) is taken as before. Remembers the last :data:`MAX_OLD` epochs.
    """

    MAX_OLD = 8

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.key = (-1, -1)
        self.old: collections.deque[str] = collections.deque(maxlen=self.MAX_OLD)

    def fresh(self, doc: dict) -> bool:
        """True if the watermark ``doc`` (a decoded ``.../ack`` payload) is to be acted on."""
        epoch, gen, n = doc.get("epoch"), doc.get("gen"), doc.get("n")
        if not (isinstance(epoch, str) and _is_count(gen) and _is_count(n)):
            return True
        if epoch == self.epoch:
            if (gen, n) <= self.key:
                return False
        elif epoch in self.old:
            return False
        else:
            if self.epoch is not None:
                self.old.append(self.epoch)
            self.epoch = epoch
        self.key = (gen, n)
        return True


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class DeviceService:
    """Outbox, MQTT link and sender for one device; the apps' event sink (implements
    :class:`~storeedge.firmware.common.runner.EventSink`: ``emit``, ``heartbeat``,
    ``on_command``).

    Args:
        cfg: the device config (``device``, ``link``, ``outbox`` sections used here).
        clock: time source for event timestamps.
        app: app name for the ``device.started`` event.
    """

    def __init__(self, cfg: DeviceConfig, *, clock: Clock | None = None, app: str = "device"):
        self.cfg, self.app = cfg, app
        self.clock = clock or SystemClock()
        dev = cfg.device
        self.identity = Identity(dev.id, dev.kind, dev.store)
        self.outbox = Outbox(cfg.outbox, self.identity, clock=self.clock,
                             seal_key=seal_key_of(getattr(cfg, "security", None), dev.id))
        self._handlers: dict[str, CommandHandler] = {}
        self._wake = threading.Condition()
        self._acked_hint = 0
        self._lowered: int | None = None     # a receiver's watermark below ours (it lost data)
        self._ack_order = AckOrder()
        self.stale_acks = 0                  # superseded watermarks ignored
        self._reconnected = False
        self._stop = threading.Event()
        self._commands: queue.Queue = queue.Queue(maxsize=QUEUE_MAX)
        self.gate = CommandGate(cfg, self.clock.time, fresh=self.outbox.last_seq == 0)
        self.command_errors = 0
        self._last_summary = float("-inf")
        self.sent = self.resends = 0
        base = topics.base(dev.store, dev.kind, dev.id)
        self._state_topic = f"{base}/state"
        self.link = MqttLink(f"se-{dev.store}-{dev.id}", cfg.link,
                             will=Will(self._state_topic, json_payload({"state": "offline"})),
                             on_connect=self._on_connect)
        self.link.subscribe(f"{base}/ack", self._on_ack)
        self.link.subscribe(f"{base}/cmd/+", self._on_command, commands=True)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Start the link, the sender and the command worker; emit ``device.started``."""
        for target, name in ((self._send_loop, "sender"), (self._command_loop, "commands")):
            thread = threading.Thread(target=target, name=f"{self.identity.dev}-{name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        self.link.start()
        stats = self.outbox.stats()
        self.emit(DeviceStarted(app=self.app, version=__version__, pending=stats.pending,
                                last_seq=stats.last_seq))

    def emit(self, body: Any, ts: float | None = None) -> Envelope:
        """Store ``body`` durably (blocks for the group commit) and schedule it for sending.

        Args:
            body: a registered event dataclass instance.
            ts: the event's own time, epoch seconds (None: now).
        Raises:
            OutboxFull, TelemetryDropped, EventTooLarge: see :mod:`outbox`.
        """
        env = self.outbox.append(body, ts=ts)
        self._poke()
        return env

    def on_command(self, name: str, handler: CommandHandler) -> None:
        """Run ``handler`` for commands named ``name``; its result is emitted as an event."""
        self._handlers[name] = handler

    def heartbeat(self) -> None:
        """Tell systemd's watchdog we are alive (no-op when not supervised; see
        :class:`~storeedge.firmware.common.runner.EventSink`)."""
        notify_alive()

    def status(self) -> ServiceStatus:
        """Link and outbox state."""
        return ServiceStatus(self.identity.dev, self.identity.kind,
                             "connected" if self.link.connected.is_set() else "disconnected",
                             self.link.connects, self.outbox.stats(), self.sent, self.resends,
                             sum(self.gate.refusals.total.values()))

    def recent_events(self, n: int = 20, type: str | None = None) -> list[Envelope]:  # noqa: A002
        """The last ``n`` events, optionally only those whose type starts with ``type``."""
        return self.outbox.recent(n, type)

    def wait_acked(self, seq: int, timeout: float) -> bool:
        """Block until the watermark reaches ``seq`` (tests, orderly shutdown)."""
        with self._wake:
            return self._wake.wait_for(lambda: self.outbox.acked_seq >= seq, timeout)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds until every committed event is acknowledged
        (an orderly stop that lets the last events leave); False when some are still held
        (they stay in the outbox and are sent after the next start)."""
        return self.wait_acked(self.outbox.last_seq, timeout_s)

    def close(self) -> None:
        """Stop sending, say offline, close the outbox."""
        self._stop.set()
        self._poke()
        self._put_command(None)
        for thread in self._threads:
            thread.join(5)
        self.link.stop(final=(self._state_topic, json_payload({"state": "offline"})))
        self.outbox.close()

    # ------------------------------------------------------------------ callbacks (paho thread)

    def _on_connect(self) -> None:
        self._publish_state()
        with self._wake:
            self._reconnected = True
            self._wake.notify_all()

    def held_from(self) -> int:
        """The oldest seq still in the outbox (``acked + 1`` when it holds none: rows above
        the acknowledged mark are never pruned)."""
        rows = self.outbox.held_after(0, 1)
        return rows[0].seq if rows else self.outbox.acked_seq + 1

    def _publish_state(self) -> None:
        """Retained state: ``floor`` (our acked seq), ``last_seq`` and ``held_from`` (a gateway
        that lost its database reports the seqs below it as gone for good)."""
        online = {"state": "online", "boot": self.outbox.boot, "floor": self.outbox.acked_seq,
                  "last_seq": self.outbox.last_seq, "held_from": self.held_from()}
        self.link.publish(self._state_topic, json_payload(online), retain=True)

    def _on_ack(self, msg) -> None:
        try:
            doc = json.loads(msg.payload)
            seq = doc["seq"]
            if not isinstance(seq, int) or seq < 0:
                raise ValueError(seq)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed watermark on %s: %r", msg.topic, msg.payload[:80])
            return
        if not self._ack_order.fresh(doc):
            self.stale_acks += 1
            log.debug("ignoring a superseded watermark %d on %s", seq, msg.topic)
            return
        if seq > self.outbox.last_seq:
            log.error("watermark %d is above our last seq %d: ignored", seq, self.outbox.last_seq)
            return
        with self._wake:
            self._acked_hint = max(self._acked_hint, seq)
            # the receiver's mark went below ours: it lost what we gave it; re-send the
            # history we keep (``outbox.keep_acked``) from just above its mark
            self._lowered = seq if seq < self.outbox.acked_seq else None
            self._wake.notify_all()

    def _on_command(self, msg) -> None:
        name = msg.topic.rsplit("/", 1)[-1]
        if msg.retain:
            self._refused(name, CommandRefused("retained", "commands are never taken from "
                                                           "retained messages"))
            return
        if not self._put_command((name, msg.payload)):
            self._refused(name, CommandRefused("queue_full", f"{QUEUE_MAX} commands waiting"))

    def _refused(self, name: str, exc: CommandRefused) -> None:
        """Count a refusal; log only the first of each reason per summary period (a flood
        must not flood the log either)."""
        if self.gate.refused(name, exc) == 1:
            log.warning("command %r refused: %s (further %s refusals counted, summarised in "
                        "device.commands_refused)", name[:64], exc, exc.reason)

    def _put_command(self, item) -> bool:
        try:
            self._commands.put_nowait(item)
            return True
        except queue.Full:
            if item is None:                 # shutdown: make room for the sentinel
                while True:
                    try:
                        self._commands.get_nowait()
                    except queue.Empty:
                        break
                self._commands.put_nowait(None)
                return True
            return False

    def _poke(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # ------------------------------------------------------------------ threads

    def _command_loop(self) -> None:
        while True:
            try:
                item = self._commands.get(timeout=1.0)
            except queue.Empty:
                item = ()
            if item is None:
                self._summarise_refusals(force=True)
                return
            try:
                if item:
                    self._run_command(*item)
                self._summarise_refusals()
            except Exception:        # the worker never dies: log, count, carry on
                self.command_errors += 1
                log.exception("command worker error (continuing)")

    def _run_command(self, name: str, payload: bytes) -> None:
        try:
            adm = self.gate.admit(name, payload, known=name in self._handlers)
        except CommandRefused as exc:
            self._refused(name, exc)
            return
        cmd = Command(adm.name, adm.args, adm.by, adm.id, adm.role)
        try:
            result = self._handlers[name](cmd)
            body = DeviceCommand(name=name, id=cmd.id, by=cmd.by, ok=True, result=result,
                                 role=cmd.role)
        except Exception as exc:  # a command must never kill the device
            log.exception("command %s failed", name)
            body = DeviceCommand(name=name, id=cmd.id, by=cmd.by, ok=False, role=cmd.role,
                                 error=f"{type(exc).__name__}: {exc}"[:300])
        self._emit_guarded(body)

    def _summarise_refusals(self, force: bool = False) -> None:
        """Emit one ``device.commands_refused`` for the refusals since the last one, at most
        every ``SUMMARY_S`` seconds (monotonic)."""
        now = time.monotonic()
        if not force and now - self._last_summary < SUMMARY_S:
            return
        counts = self.gate.take_pending()
        if counts is None:
            return
        self._last_summary = now
        self._emit_guarded(CommandsRefused(
            count=sum(counts.pending.values()), reasons=dict(counts.pending),
            total=sum(counts.total.values()), last_name=counts.last_name,
            last_detail=counts.last_detail))

    def _emit_guarded(self, body: Any) -> None:
        """Emit ``body``; a full outbox (or a bad body) is logged and counted, never raised."""
        try:
            self.emit(body)
        except (OutboxError, EventError) as exc:
            self.command_errors += 1
            log.error("could not record %s: %s", type(body).__name__, exc)

    def _send_loop(self) -> None:
        sender = _Sender(self)
        while not self._stop.is_set():
            try:
                sender.step()
            except Exception:
                log.exception("sender step failed; retrying")
                self._stop.wait(1.0)


class _Sender:
    """Sliding window over the outbox, driven by watermarks and reconnects.

    Network timing uses the machine's monotonic clock, not the app's (possibly simulated)
    clock: a test that fast-forwards an app's time must not make the link re-send.
    """

    MAX_BACKOFF = 32       # blind re-sends at least link.resend_timeout_s x this apart

    def __init__(self, svc: DeviceService):
        self.svc = svc
        self.cursor = svc.outbox.acked_seq
        self.inflight: collections.deque[int] = collections.deque()
        self.generation = svc.outbox.generation
        self.last_progress = time.monotonic()
        self.last_sent = None                    # paho's MQTTMessageInfo of the last publish
        self.backoff = 1                         # stall timeout multiplier (see _stalled)
        self.control_sent: set[int] = set()
        self.history: int | None = None          # re-sending acknowledged rows after this seq
        self.history_low: int | None = None      # the lowered mark being served
        self.history_done = 0.0

    def step(self) -> None:
        svc, outbox = self.svc, self.svc.outbox
        with svc._wake:
            svc._wake.wait(0.2)
            hint, reconnected = svc._acked_hint, svc._reconnected
            svc._reconnected = False
        if hint > outbox.acked_seq:
            outbox.mark_acked(hint)
            self.last_progress = time.monotonic()
            with svc._wake:
                svc._wake.notify_all()
        while self.inflight and self.inflight[0] <= outbox.acked_seq:
            self.inflight.popleft()
        if reconnected or outbox.generation != self.generation or self._stalled():
            self._rewind()
        if svc.link.connected.is_set():
            self._serve_history()
            self._send_more()

    def _serve_history(self) -> None:
        """Re-send acknowledged rows above a lowered receiver mark (window-sized steps); start
        over if the mark has not caught up ``resend_timeout_s`` after the last step."""
        svc = self.svc
        with svc._wake:
            low = svc._lowered
        if low is None:
            self.history = self.history_low = None
            return
        now = time.monotonic()
        if self.history is None and (self.history_low is None or low < self.history_low or
                                     now - self.history_done > svc.cfg.link.resend_timeout_s):
            self.history = self.history_low = low
            log.warning("receiver watermark %d is below ours (%d): re-sending held history",
                        low, svc.outbox.acked_seq)
            svc._publish_state()
        if self.history is None:
            return
        acked = svc.outbox.acked_seq
        rows = [e for e in svc.outbox.held_after(self.history, svc.cfg.link.window)
                if e.seq <= acked]
        for event in rows:
            self._publish(event)
        svc.resends += len(rows)
        if rows:
            self.history = rows[-1].seq
        if not rows or self.history >= acked:
            self.history, self.history_done = None, now

    def _stalled(self) -> bool:
        """No watermark progress for ``resend_timeout_s`` although the broker took all we
        sent. While a publish still awaits its PUBACK the window is on its way (a slow or
        busy link): re-sending would only queue duplicates behind it, crowding out new
        events until goodput collapses (issue 17: 79% duplicates on a 64 kbit/s link).
        Each blind re-send doubles the wait before the next (up to MAX_BACKOFF times) until
        the window is caught up: devices behind one overloaded receiver otherwise re-send
        faster than it can discard the copies (issue 17: 385k duplicates for 65k events)."""
        if not self.inflight or self._on_its_way():
            if not self.inflight:
                self.backoff = 1                 # caught up: the path is healthy again
            self.last_progress = time.monotonic()
            return False
        timeout = self.svc.cfg.link.resend_timeout_s * self.backoff
        if time.monotonic() - self.last_progress <= timeout:
            return False
        self.backoff = min(self.backoff * 2, self.MAX_BACKOFF)
        return True

    def _on_its_way(self) -> bool:
        try:
            return self.last_sent is not None and not self.last_sent.is_published()
        except (RuntimeError, ValueError):   # refused by paho (not connected): not on its way
            return False

    def _rewind(self) -> None:
        outbox = self.svc.outbox
        if self.inflight:
            self.svc.resends += len(self.inflight)
        self.cursor = outbox.acked_seq
        self.inflight.clear()
        self.control_sent.clear()
        self.generation = outbox.generation
        self.last_progress = time.monotonic()

    def _send_more(self) -> None:
        outbox = self.svc.outbox
        room = self.svc.cfg.link.window - len(self.inflight)
        if room > 0:
            for event in outbox.pending_after(self.cursor, room):
                self._publish(event)
                self.inflight.append(event.seq)
                self.cursor = event.seq
            return
        # Window full: still send salvage notices beyond it (once per rewind), so a receiver
        # waiting for seqs that are gone for good can move its watermark.
        for event in outbox.pending_control(self.cursor):
            if event.seq not in self.control_sent:
                self._publish(event)
                self.control_sent.add(event.seq)

    def _publish(self, event) -> None:
        ident = self.svc.identity
        self.last_sent = self.svc.link.publish(
            topics.event(ident.store, ident.kind, ident.dev, event.type), event.payload)
        self.svc.sent += 1
