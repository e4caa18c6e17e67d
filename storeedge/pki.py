"""The store PKI: a store CA, one client certificate per device (identity = device id), a CRL.

Work in progress: see derive_e2e_key (stable API).
"""
from __future__ import annotations

import hashlib
import hmac


def derive_e2e_key(master: bytes, store: str, dev: str) -> bytes:
    """A device's 32-byte end-to-end event key, derived from the store's master secret.

    ``HMAC-SHA256(master, b"storeedge-e2e-v1|" + store + b"|" + dev)``; the store server
    re-derives it for every device, the device holds only its own (``e2e.key``).
    """
    return hmac.new(master, b"storeedge-e2e-v1|" + store.encode() + b"|" + dev.encode(),
                    hashlib.sha256).digest()
