"""``storeedge gateway``: run the relay, or ``storeedge gateway status`` to inspect it."""
from __future__ import annotations

import argparse
import logging
import sys

from storeedge.firmware.common.app import (app_parser, load_app_config, stop_event_on_signals,
                                           validation_exit_code)
from storeedge.firmware.common.watchdog import sd_notify, watchdog_interval_s
from storeedge.firmware.gateway.config import GatewayConfig

log = logging.getLogger("storeedge.gateway")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "status":
        return _status(argv[1:])
    args = app_parser("gateway", "relay device events to the store server, losing nothing") \
        .parse_args(argv)
    cfg = load_app_config(args, GatewayConfig)
    if cfg is None:
        return validation_exit_code(args)
    from storeedge.firmware.gateway.relay import Relay

    relay = Relay(cfg)
    relay.start()
    stop = stop_event_on_signals()
    sd_notify("READY=1")
    log.info("gateway %s relaying %s -> %s", cfg.device.id, cfg.link.url, cfg.upstream.url)
    period = watchdog_interval_s() or 5.0
    while not stop.wait(period):
        sd_notify("WATCHDOG=1")
    relay.close()
    return 0


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
