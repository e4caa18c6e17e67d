"""Events the gateway creates itself (``gateway.status``, ``gateway.gap_unrecoverable``, and
what other programs on the gateway spool for it, e.g. ``device.update_failed``).

They are stored in the gateway's own store under the gateway's identity (kind ``gateway``),
sealed with the gateway's ``security.e2e_key`` like any device event, and forwarded upstream
by the relay's forwarder.  Seqs continue from the highest the gateway holds for itself --
after a lost database that is the store server's retained watermark, which the relay reads
before the first own event is made (``ready``).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from storeedge.atomic import write_atomic
from storeedge.events import (Envelope, body_to_dict, format_ts, load_all_event_types,
                              validate_body)
from storeedge.firmware.gateway.store import GatewayStore, Incoming
from storeedge.seal import seal

log = logging.getLogger(__name__)


class OwnEvents:
    """Sequence, seal and store the gateway's own events.

    Args:
        store: the gateway store (the forwarder sends what it holds).
        dev, store_id: the gateway's identity.
        key: its 32-byte end-to-end key (None: unsealed, only for insecure stores).
    """

    def __init__(self, store: GatewayStore, dev: str, store_id: str, key: bytes | None):
        self.store, self.dev, self.store_id, self.key = store, dev, store_id, key
        self.boot = uuid.uuid4().hex[:16]
        self._lock = threading.Lock()
        self._next = 0
        self.emitted = 0
        self.spool_rejected = 0
        self._spooled: set[Path] = set()

    def emit(self, body: Any, on_commit: Callable | None = None) -> Envelope:
        """Sequence ``body`` after everything held for the gateway and queue it for commit;
        ``on_commit(ticket)`` runs once the store has committed it (or failed to)."""
        name, prio = body.EVENT_TYPE, int(body.EVENT_PRIO)
        doc = body_to_dict(body)
        validate_body(name, doc)
        with self._lock:
            state = self.store.devices.get(self.dev)
            held = 0 if state is None else max(state.mark.wm, state.confirmed)
            self._next = max(self._next, held + 1)
            env = Envelope(dev=self.dev, kind="gateway", store=self.store_id, boot=self.boot,
                           seq=self._next, ts=format_ts(time.time()), type=name,
                           prio=prio, body=doc)
            payload = env.to_json()
            if self.key is not None:
                payload = seal(self.key, payload)
            self._next += 1
            self.store.submit(Incoming(env, payload), on_commit)
        self.emitted += 1
        return env

    def emit_spooled(self, spool: Path) -> int:
        """Emit each event another program spooled for the gateway (``spool_event``), oldest
        first; a file is deleted once its event is committed, a bad one is renamed
        ``*.rejected`` with the reason logged and counted.  Returns how many were emitted."""
        try:
            names = sorted(n for n in os.listdir(spool) if n.endswith(SPOOL_SUFFIX))
        except FileNotFoundError:
            return 0
        emitted = 0
        for name in names:
            path = spool / name
            if path in self._spooled:
                continue            # emitted, its commit (and the unlink) still pending
            try:
                body = read_spooled(path)
            except (OSError, ValueError, TypeError) as exc:
                self.spool_rejected += 1
                log.error("spooled event %s refused (%s): kept as %s.rejected", path, exc, name)
                os.replace(path, path.with_name(name + ".rejected"))
                continue
            self._spooled.add(path)
            self.emit(body, on_commit=lambda ticket, p=path: self._spool_done(ticket, p))
            emitted += 1
        return emitted

    def _spool_done(self, ticket, path: Path) -> None:
        if ticket.error is None:
            path.unlink(missing_ok=True)
        self._spooled.discard(path)     # after a failed commit: emitted again next time


SPOOL_SUFFIX = ".json"


def spool_dir(db_path: str | os.PathLike) -> Path:
    """Where the gateway takes spooled events from: ``own-spool/`` beside its database."""
    return Path(os.path.abspath(db_path)).parent / "own-spool"


def spool_event(spool: Path, name: str, body: dict) -> Path:
    """Hand one event (a registered type ``name`` and its body) to the gateway, which
    sequences, seals and forwards it under its own identity once running; written atomically
    (a power cut leaves the whole file or none).  Raises ValueError for an unknown type or a
    bad body."""
    _body(name, body)
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}{SPOOL_SUFFIX}"
    write_atomic(path, json.dumps({"type": name, "body": body}).encode(), mode=0o640)
    return path


def read_spooled(path: Path) -> Any:
    """The event body a spool file holds (ValueError/TypeError when it is not one)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("body"), dict):
        raise ValueError("not a {type, body} object")
    return _body(doc.get("type"), doc["body"])


def _body(name: Any, doc: dict) -> Any:
    """The body dataclass of registered type ``name`` from ``doc``, validated against its
    schema (ValueError for an unknown type or a bad body)."""
    registered = load_all_event_types().get(name) if isinstance(name, str) else None
    if registered is None:
        raise ValueError(f"unknown event type {name!r}")
    validate_body(name, doc)
    return registered.body(**doc)
