"""``storeedge freezer``: run the monitor, list/enrol probes, export HACCP records.

    storeedge freezer --config freezer.yaml                  run the monitor
    storeedge freezer --config freezer.yaml --validate-config
    storeedge freezer --config freezer.yaml probes [--no-measure]
    storeedge freezer --config freezer.yaml haccp-export [--out FILE] [--since YYYY-MM-DD]
                                                         [--until YYYY-MM-DD] [--unit NAME]
"""
from __future__ import annotations

import datetime as _dt
import logging
import sys

from storeedge.drivers.clock import SystemClock
from storeedge.drivers.onewire import OneWireError
from storeedge.firmware.common.app import (app_parser, load_app_config, stop_event_on_signals,
                                           validation_exit_code)
from storeedge.firmware.common.liveconfig import (ConfigWatcher, LiveConfig, Restarter,
                                                  apply_log_level)
from storeedge.firmware.freezer.app import FreezerApp
from storeedge.firmware.freezer.config import FreezerConfig, build_rules, storage_of
from storeedge.firmware.freezer.enrol import enrol
from storeedge.firmware.freezer.exc import FreezerError
from storeedge.firmware.freezer.haccp import HaccpBook
from storeedge.firmware.freezer.wiring import door_inputs, make_bus

log = logging.getLogger("storeedge.freezer")


def _parser():
    parser = app_parser("freezer", "freezer temperature monitor (DS18B20 probes, HACCP)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the monitor (the default)")
    probes = sub.add_parser("probes", help="list probes: ROM ids, readings, genuine check")
    probes.add_argument("--no-measure", action="store_true",
                        help="skip the conversion-time measurement (needs root on a Pi)")
    exp = sub.add_parser("haccp-export", help="write HACCP records as CSV")
    exp.add_argument("--out", default="-", help="CSV file (default: stdout)")
    exp.add_argument("--since", help="first day, YYYY-MM-DD (store time)")
    exp.add_argument("--until", help="day after the last, YYYY-MM-DD (store time)")
    exp.add_argument("--unit", help="only this unit")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``storeedge freezer``; returns the exit code."""
    args = _parser().parse_args(_options_first(list(sys.argv[1:] if argv is None else argv)))
    cfg = load_app_config(args, FreezerConfig)
    if cfg is None:
        return validation_exit_code(args)
    rules = build_rules(cfg.freezer)
    try:
        if args.command == "haccp-export":
            return _export(args, cfg, rules)
        if args.command == "probes":
            return _probes(args, cfg, rules)
        return _run(cfg, rules, args.config)
    except (FreezerError, OneWireError, ValueError) as exc:
        print(f"storeedge freezer: {exc}", file=sys.stderr)
        return 1


def _options_first(argv: list[str]) -> list[str]:
    """Accept the common options after the command too (``haccp-export --config F``)."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--config", "--log-level") and i + 1 < len(argv):
            front += argv[i:i + 2]
            i += 2
            continue
        if arg.startswith(("--config=", "--log-level=")) or arg == "--validate-config":
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _run(cfg, rules, config_path: str) -> int:
    from storeedge.firmware.common.service import DeviceService
    clock = SystemClock()
    bus = make_bus(cfg.freezer, rules, clock)
    svc = DeviceService(cfg, clock=clock, app="freezer")
    app = FreezerApp(rules, bus, svc, clock, storage_of(cfg.freezer),
                     doors=door_inputs(cfg.freezer))
    app.register_commands(svc)
    stop = stop_event_on_signals()
    svc.start()
    restarter = Restarter(stop)
    live = freezer_live(app, cfg, restarter)
    console = _start_console(cfg.freezer.console_port, config_path, svc, app, live)
    ConfigWatcher(config_path, live, stop).start()     # a stand-alone console's commits
    try:
        app.run(stop)
    finally:
        if console is not None:
            console.stop()
        svc.close()
        if hasattr(bus, "close"):       # the simulated bus removes its temp folder
            bus.close()
    restarter.reexec_if_requested()
    return 0


FREEZER_RESTART_KEYS = ("device", "link", "outbox", "security", "freezer.onewire",
                        "freezer.haccp.path", "freezer.console_port", "freezer.timezone")


def freezer_live(app: FreezerApp, cfg, restart) -> LiveConfig:
    """Live config of a running freezer monitor: limits, delays, intervals, alarm policy,
    HACCP check times and batching apply at once; the rest restarts the app (``restart``)."""
    def apply_freezer(new) -> None:
        app.apply_rules(build_rules(new.freezer))
    return LiveConfig(FreezerConfig, cfg, {"freezer.": apply_freezer, "log.": apply_log_level},
                      restart=restart, fixed=FREEZER_RESTART_KEYS)


def _start_console(port: str | None, config_path: str, svc, app, live=None):
    """The technician console inside the app (issue 9's EmbeddedConsole), or None.

    A console that cannot start (no ``console.secret`` next to the config, port missing) is
    logged as an error: the freezer monitor keeps running without it.
    """
    if not port:
        return None
    from storeedge.firmware.console.embed import EmbeddedConsole
    from storeedge.firmware.console.exc import ConsoleError
    from storeedge.firmware.console.targets import FreezerTarget
    try:
        return EmbeddedConsole.start(port_url=port, config_path=config_path, service=svc,
                                     target=FreezerTarget(app, FreezerConfig, live),
                                     clock=app.clock)
    except (ConsoleError, OSError) as exc:
        log.error("console on %s not started: %s (the monitor runs without it)", port, exc)
        return None


def _day(text: str | None, tz) -> float | None:
    if not text:
        return None
    try:
        day = _dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD") from None
    return _dt.datetime.combine(day, _dt.time(0, 0), tzinfo=tz).timestamp()


def _export(args, cfg, rules) -> int:
    book = HaccpBook(cfg.freezer.haccp.path, rules, SystemClock().time())
    since, until = _day(args.since, rules.tz), _day(args.until, rules.tz)
    if args.unit is not None and args.unit not in rules.units:
        raise ValueError(f"unknown unit {args.unit!r} (units: {', '.join(rules.units)})")
    if args.out == "-":
        n = book.export_csv(sys.stdout, since=since, until=until, unit=args.unit)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            n = book.export_csv(f, since=since, until=until, unit=args.unit)
    print(f"{n} HACCP records exported", file=sys.stderr)
    return 0


def _probes(args, cfg, rules) -> int:
    bus = make_bus(cfg.freezer, rules, SystemClock())
    try:
        results = enrol(bus, rules, measure=not args.no_measure)
    finally:
        if hasattr(bus, "close"):
            bus.close()
    print(f"{'ROM':<16} {'NAME':<10} {'TEMP':>8} {'CONV':>7}  VERDICT   NOTES")
    for r in results:
        temp = "-" if r.temp_c is None else f"{r.temp_c:.2f}"
        conv = "-" if r.conversion_ms is None else f"{r.conversion_ms:.0f}ms"
        print(f"{r.rom:<16} {r.name or '?':<10} {temp:>8} {conv:>7}  {r.verdict:<9} "
              f"{'; '.join(r.notes)}")
    return 0 if all(r.verdict == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
