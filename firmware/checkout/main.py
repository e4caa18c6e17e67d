"""``storeedge checkout``: run the lane app.

    storeedge checkout --config lane.yaml
    storeedge checkout --config lane.yaml --validate-config
"""
from __future__ import annotations

import logging
import sys

from storeedge.drivers.clock import SystemClock
from storeedge.drivers.exc import DriverError
from storeedge.firmware.checkout.app import CheckoutApp
from storeedge.firmware.checkout.config import CheckoutConfig
from storeedge.firmware.checkout.exc import CheckoutError
from storeedge.firmware.common.app import (app_parser, load_app_config, stop_event_on_signals,
                                           validation_exit_code)
from storeedge.firmware.common.liveconfig import (ConfigWatcher, LiveConfig, Restarter,
                                                  apply_log_level)

log = logging.getLogger("storeedge.checkout")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = app_parser("checkout", "self-checkout lane: item passes vs POS scans, alerts")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = load_app_config(args, CheckoutConfig)
    if cfg is None:
        return validation_exit_code(args)
    from storeedge.firmware.common.service import DeviceService

    clock = SystemClock()
    svc = DeviceService(cfg, clock=clock, app="checkout")
    try:
        app = CheckoutApp(cfg, svc.emit, clock)
    except (CheckoutError, DriverError) as exc:
        print(f"storeedge checkout: {exc}", file=sys.stderr)
        svc.close()
        return 1
    svc.start()
    stop = stop_event_on_signals()
    restarter = Restarter(stop)          # live config: log level live, the rest restarts cleanly
    live = LiveConfig(CheckoutConfig, cfg, {"log.": apply_log_level}, restart=restarter)
    ConfigWatcher(args.config, live, stop).start()
    try:
        app.run(stop, heartbeat=svc.heartbeat)
    finally:
        svc.close()
    restarter.reexec_if_requested()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
