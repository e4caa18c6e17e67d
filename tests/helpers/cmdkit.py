"""A store command key pair for tests, and a signer that counts like the store server."""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from storeedge.signing import (DOMAIN, Role, SignedCommand, Target, load_signing_key,
                               write_key_pair)


class CommandKit:
    """``command.key`` / ``command.pub`` in ``folder`` and signed payloads for one store.

    ``sign(kind, dev, name, args, by=..., role=...)`` counts like the store server's sender
    (``max(last + 1, now in ms)``; override with ``ctr=``) and uses a not-after of
    now + ``ttl_s`` (override with ``exp=``).
    """

    def __init__(self, folder: Path, store: str = "s0042", ttl_s: int = 300):
        folder.mkdir(parents=True, exist_ok=True)
        self.key_path, self.pub_path = folder / "command.key", folder / "command.pub"
        write_key_pair(self.key_path, self.pub_path)
        self.signer = load_signing_key(self.key_path)
        self.store, self.ttl_s = store, ttl_s
        self._last = 0

    @classmethod
    def from_pki(cls, pki, ttl_s: int = 300) -> "CommandKit":
        """The kit of a ``storeedge.pki.StorePKI`` (its ``command.key``; devices enrolled in
        it get ``command.pub`` in their bundle)."""
        kit = cls.__new__(cls)
        kit.key_path, kit.pub_path = pki.command_key, pki.command_pub
        kit.signer = load_signing_key(kit.key_path)
        kit.store, kit.ttl_s = pki.store, ttl_s
        kit._last = 0
        return kit

    def _next(self) -> int:
        self._last = max(self._last + 1, int(time.time() * 1000))
        return self._last

    def sign(self, kind: str, dev: str, name: str, args: dict | None = None,
             **over) -> bytes:
        """Signed payload; ``over``: by (alice), role (manager), ctr, exp, store, cmd_id."""
        cmd = SignedCommand(over.get("cmd_id", ""),
                            Target(over.get("store", self.store), kind, dev), name, args or {},
                            over["ctr"] if over.get("ctr") is not None else self._next(),
                            over["exp"] if over.get("exp") is not None
                            else int(time.time() + self.ttl_s),
                            over.get("by", "alice"), Role(over.get("role", "manager")))
        return self.signer.sign(cmd)


def start_plain_broker(folder: Path):
    """An explicitly INSECURE Mosquitto (plain, anonymous, no ACL): for the tests that show
    what the device or gateway refuses *by itself* when a broker lets anything through."""
    from storeedge.brokerproc import Mosquitto

    broker = Mosquitto(folder, insecure=True)
    broker.start()
    return broker


def connect_as(broker, dev: str, kind: str):
    """A started raw paho client on ``broker`` as identity ``dev`` (TLS) or anonymous
    (an insecure broker)."""
    import paho.mqtt.client as mqtt

    if broker.insecure:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    else:
        client = broker.client(dev, kind)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def sign_unchecked(kit: CommandKit, target: Target, name: str, role: str) -> bytes:
    """Sign bypassing the signer's own role check (what a tampered server could do)."""
    body = {"id": "c-1", "store": target.store, "kind": target.kind, "dev": target.dev,
            "name": name, "args": {}, "ctr": 9, "exp": int(time.time() + 60), "by": "eve",
            "role": role}
    raw = json.dumps(body, separators=(",", ":")).encode()
    sig = kit.signer.key.sign(DOMAIN + raw)
    b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")   # noqa: E731
    return json.dumps({"v": 1, "cmd": b64(raw), "sig": b64(sig)}).encode()
