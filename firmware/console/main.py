"""``storeedge console``: the technician serial console.

Examples::

    storeedge console --port /dev/ttyGS0 --config /etc/storeedge/freezer.yaml
    storeedge console --config /etc/storeedge/freezer.yaml --set-secret    # reads stdin
    storeedge console --port /dev/pts/3 --config door.yaml --simulate       # bench, no hardware

The technician secret lives in ``--secret-file`` (default: ``console.secret`` next to the
config) as a scrypt hash only.  Console settings (idle timeout, lockout) are options here, not
config keys, so a bad config edit can never lock the technician out.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import dataclasses
import os
import sys
from dataclasses import dataclass

import yaml

from storeedge.cmdline import setup_logging, stop_event_on_signals
from storeedge.config import load_config, yaml_mapping
from storeedge.exc import ConfigError, StoreedgeError
from storeedge.firmware.console.auth import LockoutPolicy
from storeedge.settings import DeviceConfig, OutboxSection
from storeedge.firmware.console.console import ConsoleParts, serve_port
from storeedge.firmware.console.exc import ConsoleError
from storeedge.firmware.console.secret import read_logins, write_secret_file, write_user
from storeedge.firmware.console.session import SessionSettings

log = logging.getLogger("storeedge.console")


def parser() -> argparse.ArgumentParser:
    """The command-line options."""
    p = argparse.ArgumentParser(prog="storeedge console", description="technician serial console")
    p.add_argument("--config", required=True, metavar="FILE", help="the device's YAML config")
    p.add_argument("--port", metavar="URL", help="serial port or pyserial URL (/dev/ttyGS0, "
                   "/dev/serial0, /dev/pts/N, socket://host:port)")
    p.add_argument("--baud", type=int, default=115200, help="bits per second (default 115200)")
    p.add_argument("--secret-file", metavar="FILE", help="scrypt hash of the technician secret "
                   "(default: console.secret next to the config)")
    p.add_argument("--set-secret", action="store_true",
                   help="read a new technician secret (twice) from the terminal/stdin and exit")
    p.add_argument("--user", metavar="NAME",
                   help="with --set-secret: add or change technician NAME (per-technician "
                   "logins; each commit is recorded by name)")
    p.add_argument("--idle-timeout", type=float, default=600.0, metavar="S",
                   help="log out after S seconds without input (default 600)")
    p.add_argument("--lockout-after", type=int, default=3, metavar="N",
                   help="failed logins before a lockout (default 3)")
    p.add_argument("--lockout-base", type=float, default=30.0, metavar="S",
                   help="first lockout in seconds; doubles per further failure (default 30)")
    p.add_argument("--simulate", action="store_true",
                   help="simulated hardware (gpiozero MockFactory, loop:// scanner)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


@dataclass(frozen=True)
class Options:
    """Parsed options with defaults resolved."""

    config: str
    port: str | None
    baud: int
    secret_file: str
    args: argparse.Namespace


def _options(argv: list[str]) -> Options:
    args = parser().parse_args(argv)
    secret = args.secret_file or os.path.join(os.path.dirname(os.path.abspath(args.config)),
                                              "console.secret")
    return Options(args.config, args.port, args.baud, secret, args)


def set_secret(path: str, user: str | None = None) -> int:
    """Ask for a new secret twice and store its hash (for technician ``user``); exit status."""
    read = getpass.getpass if sys.stdin.isatty() else (lambda prompt: sys.stdin.readline()
                                                       .rstrip("\n"))
    first = read("new technician secret: ")
    if first != read("again: "):
        print("the two entries differ; nothing changed", file=sys.stderr)
        return 1
    if user:
        write_user(path, user, first)
        print(f"login {user!r} stored (scrypt hash) in {path}")
        return 0
    write_secret_file(path, first)
    print(f"technician secret stored (scrypt hash) in {path}")
    return 0


def device_kind(config_path: str) -> str:
    """``device.kind`` from the config file (before choosing the config class)."""
    with open(config_path, encoding="utf-8") as fh:
        data = yaml_mapping(fh.read())[0]      # refuses aliases, NaN, deep nesting
    kind = (data.get("device") or {}).get("kind") if isinstance(data, dict) else None
    return kind or "sim"


def main(argv: list[str] | None = None) -> int:
    """Run the console; returns the exit status."""
    opts = _options(list(sys.argv[1:] if argv is None else argv))
    setup_logging(opts.args.log_level)
    try:
        if opts.args.set_secret:
            return set_secret(opts.secret_file, opts.args.user)
        if not opts.port:
            print("storeedge console: --port URL is required", file=sys.stderr)
            return 2
        from storeedge.firmware.console.console import refuse_self_echoing
        refuse_self_echoing(opts.port)
        return _serve(opts)
    except (ConsoleError, ConfigError, StoreedgeError, OSError, yaml.YAMLError) as exc:
        print(f"storeedge console: {exc}", file=sys.stderr)
        return 1


def service_config(cfg, config_path: str) -> DeviceConfig:
    """The DeviceService config for a standalone console's events.

    The app owns its outbox (the outbox locks it: two processes would hand out one seq twice),
    so a console running as its own process is a device of its own: id ``<device id>-con``,
    same kind and store, its outbox next to the app's (or, on a gateway, which has no outbox,
    ``console-outbox.db`` next to the config), publishing on the same broker.  Enrol that id on
    the gateway.  An app that embeds the console (``EmbeddedConsole``) uses its own service.
    """
    device = dataclasses.replace(cfg.device, id=f"{cfg.device.id[:28]}-con")
    if hasattr(cfg, "outbox"):
        path = cfg.outbox.path + ".console.db"
        outbox = dataclasses.replace(cfg.outbox, path=path)
    else:
        path = os.path.join(os.path.dirname(os.path.abspath(config_path)), "console-outbox.db")
        outbox = OutboxSection(path=path)
    return DeviceConfig(device=device, link=cfg.link, outbox=outbox, log=cfg.log)


def _serve(opts: Options) -> int:
    from storeedge.drivers.clock import SystemClock
    from storeedge.firmware.common.service import DeviceService
    from storeedge.firmware.console.adapters import make_target

    secret = read_logins(opts.secret_file)
    target = make_target(device_kind(opts.config), simulate=opts.args.simulate,
                         config_path=opts.config)
    try:
        cfg = load_config(opts.config, target.config_class)
        clock = SystemClock()
        svc_cfg = service_config(cfg, opts.config)
        service = DeviceService(svc_cfg, clock=clock, app="console")
    except BaseException:
        target.close()
        raise
    service.start()
    a = opts.args
    parts = ConsoleParts(opts.config, target, service, clock, secret, opts.port)
    settings = SessionSettings(idle_timeout_s=a.idle_timeout, prompt_name=cfg.device.id)
    policy = LockoutPolicy(max_failures=a.lockout_after, base_s=a.lockout_base)
    log.info("console on %s for %s", opts.port, cfg.device.id)
    try:
        serve_port(parts, stop_event_on_signals(), baudrate=opts.baud, settings=settings,
                   policy=policy)
    finally:
        service.close()
        target.close()
    return 0
