"""Events the gateway creates itself (``gateway.status``, ``gateway.gap_unrecoverable``).

They are stored in the gateway's own store under the gateway's identity (kind ``gateway``),
sealed with the gateway's ``security.e2e_key`` like any device event, and forwarded upstream
by the relay's forwarder.  Seqs continue from the highest the gateway holds for itself --
after a lost database that is the store server's retained watermark, which the relay reads
before the first own event is made (``ready``).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from storeedge.events import Envelope, body_to_dict, format_ts, validate_body
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

    def emit(self, body: Any) -> Envelope:
        """Sequence ``body`` after everything held for the gateway and queue it for commit."""
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
            self.store.submit(Incoming(env, payload))
        self.emitted += 1
        return env
