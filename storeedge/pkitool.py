"""``storeedge pki``: the store PKI and the broker configs generated from it.

    storeedge pki init --dir D --store S
    storeedge pki enrol DEV --kind K [--csr FILE] --dir D
    storeedge pki revoke DEV --dir D
    storeedge pki list --dir D
    storeedge pki broker-conf --dir D --out OUT [--role in_store|store|both] [--port P]
                              [--bind ADDR] [--host NAME ...] [--install-dir /data/broker]
                              [--persistence-dir /var/lib/mosquitto] [--insecure]

Errors are one line on stderr (exit 1); usage errors exit 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from storeedge.brokerconf import ROLES, BrokerSpec, write_broker_bundle, write_broker_config
from storeedge.exc import StoreedgeToolError
from storeedge.pki import KINDS, StorePKI

log = logging.getLogger("storeedge.pki")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="storeedge pki", description="the store PKI")
    sub = p.add_subparsers(dest="cmd", required=True)
    init = sub.add_parser("init", help="create a store CA, CRL, command key, e2e master")
    init.add_argument("--store", required=True, help="store id, e.g. s0042")
    enrol = sub.add_parser("enrol", help="issue a device certificate and write its bundle")
    enrol.add_argument("dev", help="device id (the certificate CN)")
    enrol.add_argument("--kind", required=True, choices=KINDS)
    enrol.add_argument("--csr", type=Path, help="PEM CSR made on the device (key stays there)")
    revoke = sub.add_parser("revoke", help="revoke a device certificate (CRL re-issued)")
    revoke.add_argument("dev")
    sub.add_parser("list", help="enrolments as a table")
    conf = sub.add_parser("broker-conf", help="write a Mosquitto config + ACL from the PKI")
    conf.add_argument("--out", type=Path, required=True, help="folder for <name>.conf/.acl")
    conf.add_argument("--role", choices=ROLES, default="in_store")
    conf.add_argument("--port", type=int, default=8883)
    conf.add_argument("--bind", default="0.0.0.0")
    conf.add_argument("--name", default=None, help="broker name (default: <role>-broker)")
    conf.add_argument("--host", action="append", default=None,
                      help="host name / IP clients use (server cert SAN); repeatable")
    conf.add_argument("--persistence-dir", type=Path, default=None)
    conf.add_argument("--max-queued", type=int, default=100_000,
                      help="max_queued_messages per client (default 100000)")
    conf.add_argument("--install-dir", default=None,
                      help="write a self-contained bundle (conf, acl, ca, crl, server cert/key) "
                           "whose paths point to this folder on the device, e.g. /data/broker")
    conf.add_argument("--insecure", action="store_true",
                      help="plain anonymous listener, no TLS, no ACL (not for a store LAN)")
    for sp in (init, enrol, revoke, sub.choices["list"], conf):
        sp.add_argument("--dir", type=Path, required=True, help="the PKI folder")
    return p


def format_table(pki: StorePKI) -> str:
    """The enrolment list as an 80-column table."""
    enrolments = pki.list()
    active = sum(not e.revoked for e in enrolments)
    lines = [f"store {pki.store}: {len(enrolments)} enrolments, {active} active",
             f"{'device':<32} {'kind':<12} {'state':<8} serial (hex)"]
    for e in enrolments:
        state = "revoked" if e.revoked else "active"
        lines.append(f"{e.id:<32} {e.kind:<12} {state:<8} {e.serial:x}"[:80])
    return "\n".join(lines)


def _broker_conf(args) -> str:
    pki = None if args.insecure else StorePKI(args.dir)
    if args.insecure:
        log.warning("writing an INSECURE broker config: anonymous, plain mqtt://, no ACL")
    name = args.name or f"{args.role.replace('_', '-')}-broker"
    spec = BrokerSpec(role=args.role, port=args.port, bind=args.bind, name=name,
                      hosts=tuple(args.host or ("127.0.0.1", "localhost")),
                      persistence_dir=args.persistence_dir, max_queued=args.max_queued,
                      insecure=args.insecure)
    if args.install_dir:
        files = write_broker_bundle(pki, spec, args.out, args.install_dir)
        return f"wrote the broker bundle {args.out} (for {args.install_dir} on the device)"
    files = write_broker_config(pki, spec, args.out, stem=name)
    return f"wrote {files.conf}" + (f" and {files.acl}" if files.acl else "")


def _run(args) -> str:
    if args.cmd == "init":
        pki = StorePKI.init(args.dir, args.store)
        return f"store PKI for {pki.store} in {pki.root}"
    if args.cmd == "broker-conf":
        return _broker_conf(args)
    pki = StorePKI(args.dir)
    if args.cmd == "enrol":
        csr = args.csr.read_bytes() if args.csr else None
        e = pki.enrol(args.dev, args.kind, csr)
        return f"enrolled {e.id} ({e.kind}), serial {e.serial:x}: bundle {pki.bundle_dir(e.id)}"
    if args.cmd == "revoke":
        e = pki.revoke(args.dev)
        return (f"revoked {e.id} (serial {e.serial:x}); regenerate the broker ACLs and reload "
                "the brokers (SIGHUP)")
    return format_table(pki)


def main(argv: list[str] | None = None) -> int:
    """``storeedge pki ...``; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        print(_run(args))
    except (StoreedgeToolError, OSError) as exc:
        print(f"storeedge pki {args.cmd}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
