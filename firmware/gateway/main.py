"""``storeedge gateway``: run the relay, or ``storeedge gateway status`` to inspect it."""
from __future__ import annotations

import argparse
import logging
import sys

from storeedge import apps
from storeedge.cmdline import app_parser, run_subcommand
from storeedge.firmware.common.runner import run_app
from storeedge.firmware.gateway.config import GatewayConfig

log = logging.getLogger("storeedge.gateway")


def main(argv: list[str]) -> int:
    """``storeedge gateway``: the relay (wired in :func:`.relay.build`), or ``status``."""
    done = run_subcommand(argv, {"status": _status})
    if done is not None:
        return done
    parser = app_parser("gateway", "relay device events to the store server, losing nothing")
    return run_app(apps.app("gateway"), argv, parser=parser)


def _status(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="storeedge gateway status",
                                     description="per-device last seq, backlog and oldest age")
    parser.add_argument("--config", required=True, metavar="FILE")
    args = parser.parse_args(argv)
    from storeedge.config import load_config
    from storeedge.exc import ConfigError
    from storeedge.firmware.gateway.store import format_status, status_report

    try:
        cfg = load_config(args.config, GatewayConfig)
        reports, rejects = status_report(cfg.relay.db_path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # sqlite3 errors: no store yet, unreadable file
        print(f"cannot read the gateway store: {exc}", file=sys.stderr)
        return 1
    print(format_status(reports, rejects))
    for line in duplicate_id_lines(reports):
        print(line)
    return 0


def duplicate_id_lines(reports) -> list[str]:
    """One warning line per device whose seqs came twice with different content: the sign
    of two devices running with one id (each takes the other's broker session over)."""
    return [f"DUPLICATE ID? {r.dev}: {r.conflicts} events reused a seq with other content; "
            f"two devices may be running as {r.dev} (each knocks the other off the broker): "
            f"give each device its own id" for r in reports if r.conflicts]
