"""End-to-end seals for hand-made envelopes in broker tests (what a device's outbox does)."""
from __future__ import annotations

from storeedge.events import Envelope
from storeedge.pki import derive_e2e_key
from storeedge.seal import seal


def device_key(url, store: str, dev: str) -> bytes | None:
    """``dev``'s end-to-end key from the PKI of the test broker behind ``url`` (None: the
    broker has no PKI, so the stack runs insecure and events go unsealed)."""
    pki = getattr(getattr(url, "broker", None), "pki", None)
    if pki is None:
        return None
    return derive_e2e_key(pki.e2e_master.read_bytes(), store, dev)


def sealed_json(env: Envelope, url) -> bytes:
    """``env`` as its device would publish it on the stack behind ``url`` (sealed if the
    store server there checks seals)."""
    key = device_key(url, env.store, env.dev)
    return env.to_json() if key is None else seal(key, env.to_json())
