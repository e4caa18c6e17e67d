"""Signed commands on the device: how fast the command gate admits or refuses, per command.

Cases (each timed per command with perf_counter, microseconds):
  junk      an unknown command name (refused before any crypto)
  forged    a well-formed command signed by the wrong key (bad_signature)
  replayed  a genuine command whose counter was already used (replayed)
  genuine   a fresh genuine command, admitted: Ed25519 verify, strict parse, role/expiry checks
            and the durable counter write (atomic replace + fsync, on this repository's disk)

Peer, interleaved in the same run on the same payloads: what a user would write by hand --
``json.loads`` of the wire doc, base64 decode and a bare ``Ed25519PublicKey.verify`` of the
body (no strict parsing, no target/role/expiry/counter checks, nothing durable).  The
``*_vs_peer`` ratios say what the gate's checks (and, for ``genuine``, the fsync) cost.

A flood of N junk commands is bounded by ``junk`` (the device's queue holds 64; the rest is
refused on the MQTT thread): ``flood_cmds_per_s`` is 1e6 / junk_p50_us.

    python bench/commands.py [--quick] [--n N]

Last line printed: one JSON object.
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storeedge.firmware.common.cmdgate import CommandGate
from storeedge.config import config_from_dict
from storeedge.exc import CommandRefused
from storeedge.settings import DeviceConfig
from storeedge.signing import (DOMAIN, CommandSigner, Role, SignedCommand, Target,
                               load_signing_key, write_key_pair)

STORE, KIND, DEV = "s0001", "freezer", "fz-1"


def _gate(folder: Path) -> tuple[CommandGate, CommandSigner]:
    write_key_pair(folder / "command.key", folder / "command.pub")
    cfg = config_from_dict({"device": {"id": DEV, "kind": KIND, "store": STORE},
                            "outbox": {"path": str(folder / "outbox.db")},
                            "security": {"command_pub": str(folder / "command.pub"),
                                         "insecure": True}}, DeviceConfig)
    cfg.security.insecure = False          # verify every command (insecure only for the link)
    gate = CommandGate(cfg, time.time)
    gate.bucket.rate = gate.bucket.burst = 10**9   # measure the checks, not the rate limit
    gate.bucket.tokens = float(10**9)
    return gate, load_signing_key(folder / "command.key")


def _peer(pub, payload: bytes) -> bool:
    doc = json.loads(payload)
    body = base64.urlsafe_b64decode(doc["cmd"] + "=" * (-len(doc["cmd"]) % 4))
    sig = base64.urlsafe_b64decode(doc["sig"] + "=" * (-len(doc["sig"]) % 4))
    try:
        pub.verify(sig, DOMAIN + body)
        return True
    except Exception:
        return False


def _time_gate(gate: CommandGate, name: str, payload: bytes, known: bool) -> float:
    t0 = time.perf_counter()
    try:
        gate.admit(name, payload, known=known)
    except CommandRefused:
        pass
    return (time.perf_counter() - t0) * 1e6


def _time_peer(pub, payload: bytes) -> float:
    t0 = time.perf_counter()
    _peer(pub, payload)
    return (time.perf_counter() - t0) * 1e6


def run(n: int) -> dict:
    target = Target(STORE, KIND, DEV)
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        gate, signer = _gate(Path(tmp))
        pub = signer.public_key
        other = CommandSigner(Ed25519PrivateKey.generate())
        exp = int(time.time()) + 3600
        def cmd(name_args: dict, ctr: int, by: str, role: Role) -> SignedCommand:
            return SignedCommand("", target, "ack", name_args, ctr, exp, by, role)

        used = signer.sign(cmd({"alarm": "a"}, 1, "x", Role.ASSOCIATE))
        gate.admit("ack", used, known=True)
        t = {k: [] for k in ("junk", "forged", "replayed", "genuine", "peer_forged",
                             "peer_genuine")}
        for i in range(n):
            forged = other.sign(cmd({"alarm": "a"}, 10**6 + i, "m", Role.MANAGER))
            fresh = signer.sign(cmd({"alarm": f"a{i}"}, 2 + i, "carol", Role.ASSOCIATE))
            t["junk"].append(_time_gate(gate, f"bogus{i % 50}", b'{"by":"x"}', False))
            t["peer_forged"].append(_time_peer(pub, forged))
            t["forged"].append(_time_gate(gate, "ack", forged, True))
            t["replayed"].append(_time_gate(gate, "ack", used, True))
            t["peer_genuine"].append(_time_peer(pub, fresh))
            t["genuine"].append(_time_gate(gate, "ack", fresh, True))
        assert gate.counter.value == n + 1, "every genuine command must have been admitted"
    return {k: v for k, v in t.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run (200 commands per case)")
    ap.add_argument("--n", type=int, default=None, help="commands per case (default 2000)")
    args = ap.parse_args(argv)
    n = args.n or (200 if args.quick else 2000)
    t = run(n)
    med = {k: statistics.median(v) for k, v in t.items()}
    p99 = {k: sorted(v)[int(0.99 * (len(v) - 1))] for k, v in t.items()}
    for k in t:
        print(f"{k:>13}: p50 {med[k]:8.1f} us   p99 {p99[k]:8.1f} us", file=sys.stderr)
    out = {"bench": "commands", "n": n, **{f"{k}_p50_us": round(med[k], 1) for k in t},
           **{f"{k}_p99_us": round(p99[k], 1) for k in t},
           "forged_vs_peer": round(med["forged"] / med["peer_forged"], 2),
           "genuine_vs_peer": round(med["genuine"] / med["peer_genuine"], 2),
           "flood_cmds_per_s": round(1e6 / med["junk"])}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
