"""``storeedge dock_door``: run a door, or (store-server side) manage keys, codes and revocations.

::

    storeedge dock_door --config door.yaml [--validate-config]
    storeedge dock_door keygen --kid 1 --out store-key-1.pem          # prints the sedpub1: line
    storeedge dock_door issue --key store-key-1.pem --store s0042 --door door-1 \\
        --vendor "ACME Foods" --driver "D. Rivera" --po PO-12345 \\
        --from 2026-11-24T06:00Z --until 2026-11-24T08:00Z [--uses 1] --png code.png
    storeedge dock_door revoke --key store-key-1.pem --store s0042 --serial 7 \\
        [--cred <24 hex>]... [--revoke-key KID]... --out revocations.json
    storeedge dock_door announce-key --key store-key-1.pem --store s0042 --serial 2 \
        --public sedpub1:2:... --out keyset.json                   # signed by a trusted key
    storeedge dock_door apply-keys --config door.yaml keyset.json       # or the MQTT 'keys' command
    storeedge dock_door trust --config door.yaml sedpub1:2:...          # add a key on the door
    storeedge dock_door apply-revocations --config door.yaml revocations.json
    storeedge dock_door reset-lockout door-1 --note "forklift hit the contact" --by "J. Doe" \
        --config st.yaml                         # signed manager command via the store server
    storeedge dock_door events --config door.yaml [-n 20]            # the door's local audit
    storeedge dock_door events --server-config st.yaml door-1        # from the store database
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from storeedge.cmdline import run_subcommand
from storeedge.config import load_config
from storeedge.exc import ConfigError
from storeedge.credential import CredentialSpec, generate_signing_key, issue, \
    parse
from storeedge.firmware.dock_door.exc import DoorError
from storeedge.doorkeys import (KeyAnnouncement, RevocationList,
                                               load_signing_key, parse_public_key_line,
                                               public_key_line, save_signing_key, sign_keyset,
                                               sign_revocations, write_atomic)
from storeedge.qrimage import write_qr_png


def parse_when(text: str) -> int:
    """Epoch seconds from ``1795000000`` or ISO 8601 (``2026-11-24T06:00Z``; naive = UTC)."""
    if text.isdigit():
        return int(text)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())


def cmd_keygen(args) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"{out} exists (use --force to replace it)", file=sys.stderr)
        return 1
    key = generate_signing_key(args.kid)
    save_signing_key(out, key)
    print(public_key_line(key.kid, key.public))
    return 0


def issue_window(valid_from: str, until: str, now: float) -> tuple[int, int]:
    """``(not_before, not_after)`` epoch seconds; ValueError when ``--from`` is after
    ``--until``; warns on stderr when the window already ended (the code can never open)."""
    start, end = parse_when(valid_from), parse_when(until)
    if start > end:
        raise ValueError(f"--from {valid_from} is after --until {until}: nothing written")
    if end < now:
        print(f"warning: the window ended {_ago(now - end)} ago (--until {until}): this code "
              f"will be refused at the door", file=sys.stderr)
    return start, end


def _ago(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    return f"{days} d {rest // 3600} h" if days else f"{rest // 3600} h {rest % 3600 // 60} min"


def cmd_issue(args) -> int:
    key = load_signing_key(args.key)
    start, end = issue_window(args.valid_from, args.until, time.time())
    spec = CredentialSpec(store=args.store, door=args.door, vendor=args.vendor,
                          driver=args.driver, po=args.po, not_before=start,
                          not_after=end, uses=args.uses)
    text = issue(key, spec)
    if args.png:
        w, h = write_qr_png(args.png, text, scale=args.scale)
        print(f"wrote {args.png} ({w}x{h} px)", file=sys.stderr)
    print(f"cred_id {parse(text).cred_hex}", file=sys.stderr)
    print(text)
    return 0


def cmd_revoke(args) -> int:
    key = load_signing_key(args.key)
    creds = frozenset(bytes.fromhex(c) for c in args.cred)
    rl = RevocationList(args.store, args.serial, int(time.time()), creds,
                        frozenset(args.revoke_key))
    write_atomic(args.out, sign_revocations(key, rl))
    print(f"wrote {args.out}: serial {args.serial}, {len(creds)} code(s), "
          f"{len(args.revoke_key)} key(s)")
    return 0


def cmd_announce(args) -> int:
    key = load_signing_key(args.key)
    keys = dict(parse_public_key_line(line) for line in args.public)
    write_atomic(args.out, sign_keyset(key, KeyAnnouncement(args.store, args.serial, keys)))
    print(f"wrote {args.out}: serial {args.serial}, keys {sorted(keys)} signed by {key.kid}")
    return 0


def cmd_apply_keys(args) -> int:
    cfg, state = _state(args.config)
    try:
        ann = state.apply_keyset(Path(args.keyset).read_bytes(), store=cfg.device.store,
                                 now=time.time())
        print(f"applied key announcement serial {ann.serial}: trusted {state.trusted_kids()}")
    finally:
        state.close()
    return 0


def _state(config: str):
    from storeedge.firmware.dock_door.config import DoorConfig
    from storeedge.firmware.dock_door.store import DoorStateStore
    cfg = load_config(config, DoorConfig)
    return cfg, DoorStateStore(cfg.door.state_path, dev=cfg.device.id)


def cmd_trust(args) -> int:
    kid, public = parse_public_key_line(args.line)
    cfg, state = _state(args.config)
    state.trust_key(kid, public, now=time.time())
    print(f"trusted keys: {state.trusted_kids()}")
    state.close()
    return 0


def cmd_apply(args) -> int:
    cfg, state = _state(args.config)
    try:
        rl = state.apply_revocations(Path(args.list).read_bytes(), store=cfg.device.store)
    finally:
        state.close()
    print(f"applied revocation list serial {rl.serial}: {len(rl.creds)} code(s), "
          f"{len(rl.keys)} key(s)")
    return 0


def cmd_clock_mark(args) -> int:
    """Show the door's wall-clock high-water mark; ``--reset`` sets it to this clock."""
    _cfg, state = _state(args.config)
    try:
        mark, now = state.clock_hwm(), time.time()
        print(f"clock mark {_utc(mark)}; this clock {_utc(now)} "
              f"({now - mark:+.0f} s)")
        if args.reset:
            state.reset_clock_hwm(now)
            print(f"clock mark reset to {_utc(now)} (restart the door app)")
    finally:
        state.close()
    return 0


def cmd_reset_lockout(args) -> int:
    """Send the signed manager command ``reset_lockout`` through the store server's
    CommandSender (exactly what ``storeedge store-server command`` does)."""
    from storeedge.server.commands import cli_main
    argv = [args.dev, "reset_lockout", "--args", json.dumps({"note": args.note}),
            "--by", args.by, "--role", "manager", "--config", args.config,
            "--kind", "dock_door", "--timeout", str(args.timeout)]
    if args.store:
        argv += ["--store", args.store]
    return cli_main(argv)


def cmd_events(args) -> int:
    """Door events, oldest first, one JSON object per line: from the door's local audit
    (``--config door.yaml``) or from the store database (``--server-config st.yaml DEV``)."""
    if bool(args.config) == bool(args.server_config):
        raise ValueError("give --config DOOR.yaml (the door's own audit) or --server-config "
                         "ST.yaml with the door id (the store database)")
    rows = _server_events(args) if args.server_config else _local_events(args)
    for row in rows[-args.n:]:
        print(json.dumps(row, sort_keys=True, separators=(",", ":")))
    if not rows:
        print("(no door events)", file=sys.stderr)
    return 0


def _local_events(args) -> list[dict]:
    _cfg, state = _state(args.config)
    try:
        return [{"i": r.i, "t": _utc(r.t), "type": r.type, **_plain(r.body)}
                for r in state.recent_audit(args.n)]
    finally:
        state.close()


def _plain(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "chain"}


def _server_events(args) -> list[dict]:
    from storeedge.server.config import StoreServerConfig
    from storeedge.server.db import open_store_db
    if not args.dev:
        raise ValueError("--server-config needs the door id: storeedge dock_door events "
                         "--server-config st.yaml DOOR_ID")
    cfg = load_config(args.server_config, StoreServerConfig)
    url = cfg.server.db
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
    if "://" not in path and not Path(path).exists():
        raise ValueError(f"store database {path} does not exist (check server.db in "
                         f"{args.server_config})")
    db = open_store_db(url)
    try:
        rows = db.events_of(args.dev)
    finally:
        db.close()
    return [{"seq": seq, "type": etype, **(body or {})} for seq, etype, body in rows
            if etype.startswith("door.")]


def _utc(t: float) -> str:
    if t <= 0:
        return "none"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _tools_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="storeedge dock_door", description="door keys, codes, revocations")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="new store signing key (prints its public line)")
    k.add_argument("--kid", type=int, required=True, help="key id 0..65535")
    k.add_argument("--out", required=True, help="private key file (PEM, mode 0600)")
    k.add_argument("--force", action="store_true")
    i = sub.add_parser("issue", help="sign a delivery code and write a PNG QR")
    for name in ("key", "store", "door", "vendor", "driver", "po", "until"):
        i.add_argument(f"--{name}", required=True)
    i.add_argument("--from", dest="valid_from", required=True, help="epoch s or ISO 8601 (UTC)")
    i.add_argument("--uses", type=int, default=1)
    i.add_argument("--png", help="write the QR code here")
    i.add_argument("--scale", type=int, default=8, help="pixels per module")
    r = sub.add_parser("revoke", help="sign a complete revocation list")
    for name in ("key", "store", "out"):
        r.add_argument(f"--{name}", required=True)
    r.add_argument("--serial", type=int, required=True, help="must grow with every list")
    r.add_argument("--cred", action="append", default=[], help="credential id (24 hex)")
    r.add_argument("--revoke-key", type=int, action="append", default=[], help="key id")
    t = sub.add_parser("trust", help="add a store public key to a door's state")
    t.add_argument("--config", required=True)
    t.add_argument("line", help="sedpub1:<kid>:<key>")
    a = sub.add_parser("apply-revocations", help="apply a signed revocation list on a door")
    a.add_argument("--config", required=True)
    a.add_argument("list")
    n = sub.add_parser("announce-key", help="sign new public keys with a trusted key")
    for name in ("key", "store", "out"):
        n.add_argument(f"--{name}", required=True)
    n.add_argument("--serial", type=int, required=True, help="must grow with every announcement")
    n.add_argument("--public", action="append", required=True, help="sedpub1: line (repeat)")
    ak = sub.add_parser("apply-keys", help="apply a signed key announcement on a door")
    ak.add_argument("--config", required=True)
    ak.add_argument("keyset")
    c = sub.add_parser("clock-mark", help="show (or, with the door app stopped and the clock "
                                          "fixed, --reset) the wall-clock high-water mark")
    c.add_argument("--config", required=True)
    c.add_argument("--reset", action="store_true",
                   help="set the mark to this machine's clock (may lower it)")
    _door_ops(sub)
    return p


def _door_ops(sub) -> None:
    r = sub.add_parser("reset-lockout", help="clear a door's lockout: signed manager command "
                                             "sent by the store server")
    r.add_argument("dev", help="door id, e.g. door-1")
    r.add_argument("--note", required=True, help="why (kept in the door's audit)")
    r.add_argument("--by", required=True, help="the manager's name or initials")
    r.add_argument("--config", required=True, help="the store server's config (st.yaml)")
    r.add_argument("--store", help="store id (default: from the store database)")
    r.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker")
    e = sub.add_parser("events", help="list door events (local audit or store database)")
    e.add_argument("dev", nargs="?", help="door id (with --server-config)")
    e.add_argument("--config", help="the door's config: read its local audit")
    e.add_argument("--server-config", help="the store server's config: read the store database")
    e.add_argument("-n", type=int, default=50, help="last N events (default 50)")


TOOLS = {"keygen": cmd_keygen, "issue": cmd_issue, "revoke": cmd_revoke, "trust": cmd_trust,
         "apply-revocations": cmd_apply, "announce-key": cmd_announce,
         "apply-keys": cmd_apply_keys, "clock-mark": cmd_clock_mark,
         "reset-lockout": cmd_reset_lockout, "events": cmd_events}


def _run_tool(name: str, argv: list[str]) -> int:
    """``storeedge dock_door <name> ...``: one of :data:`TOOLS`; expected failures on one line."""
    args = _tools_parser().parse_args([name] + argv)
    try:
        return TOOLS[args.cmd](args)
    except (DoorError, ConfigError, ValueError, OSError) as exc:
        print(f"storeedge dock_door {args.cmd}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``storeedge dock_door``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    done = run_subcommand(argv, {name: (lambda rest, name=name: _run_tool(name, rest))
                                 for name in TOOLS})
    if done is not None:
        return done
    from storeedge import apps
    from storeedge.cmdline import app_parser
    from storeedge.firmware.common.runner import run_app
    parser = app_parser("dock_door", "dock door QR controller (tools: " + ", ".join(TOOLS) + ")")
    return run_app(apps.app("dock_door"), argv, parser=parser)
