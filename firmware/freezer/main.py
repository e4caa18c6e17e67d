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

from storeedge import apps
from storeedge.drivers.clock import SystemClock
from storeedge.drivers.onewire import OneWireError
from storeedge.cmdline import AppExit, app_parser, load_app_config, run_subcommand
from storeedge.firmware.common.runner import run_app
from storeedge.firmware.freezer.config import FreezerConfig, build_rules
from storeedge.firmware.freezer.enrol import enrol
from storeedge.firmware.freezer.exc import FreezerError
from storeedge.firmware.freezer.haccp import HaccpBook
from storeedge.firmware.freezer.wiring import make_bus

log = logging.getLogger("storeedge.freezer")
DESCRIPTION = "freezer temperature monitor (DS18B20 probes, HACCP)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``storeedge freezer``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    done = run_subcommand(argv, {"run": _run, "probes": _probes_main,
                                 "haccp-export": _export_main})
    return _run(argv) if done is None else done


def _run(argv: list[str]) -> int:
    """``storeedge freezer [run] --config F``: the monitor (wired in ``wiring.build``)."""
    parser = app_parser("freezer", DESCRIPTION + "; commands: run (the default), probes, "
                                                 "haccp-export")
    return run_app(apps.app("freezer"), argv, parser=parser)


def _tool(argv: list[str], parser, work) -> int:
    """Parse ``argv``, load the config, run ``work(args, cfg, rules)``; its exit code."""
    args = parser.parse_args(argv)
    try:
        cfg = load_app_config(args, FreezerConfig)
    except AppExit as done:
        return done.exit_code
    try:
        return work(args, cfg, build_rules(cfg.freezer))
    except (FreezerError, OneWireError, ValueError) as exc:
        print(f"storeedge freezer: {exc}", file=sys.stderr)
        return 1


def _probes_main(argv: list[str]) -> int:
    parser = app_parser("freezer probes", "list probes: ROM ids, readings, genuine check")
    parser.add_argument("--no-measure", action="store_true",
                        help="skip the conversion-time measurement (needs root on a Pi)")
    return _tool(argv, parser, _probes)


def _export_main(argv: list[str]) -> int:
    parser = app_parser("freezer haccp-export", "write HACCP records as CSV")
    parser.add_argument("--out", default="-", help="CSV file (default: stdout)")
    parser.add_argument("--since", help="first day, YYYY-MM-DD (store time)")
    parser.add_argument("--until", help="day after the last, YYYY-MM-DD (store time)")
    parser.add_argument("--unit", help="only this unit")
    return _tool(argv, parser, _export)


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
