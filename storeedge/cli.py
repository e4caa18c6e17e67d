"""The one command: ``storeedge <app> [options]``.

Each app lives in its own module with ``main(argv: list[str]) -> int``; this file only
dispatches, so importing the CLI never imports an app's hardware libraries.

Examples::

    storeedge gateway --config gateway.yaml
    storeedge freezer --config freezer.yaml --validate-config
    storeedge demo --duration 30
"""
from __future__ import annotations

import importlib
import sys

APPS: dict[str, tuple[str, str]] = {
    "checkout": ("storeedge.firmware.checkout.main", "self-checkout lane camera"),
    "door": ("storeedge.firmware.dock_door.main", "dock door QR controller (also: door issue ...)"),
    "freezer": ("storeedge.firmware.freezer.main", "freezer temperature monitor"),
    "gateway": ("storeedge.firmware.gateway.main", "in-store event relay (also: gateway status)"),
    "store-server": ("storeedge.server.main", "store-side reference consumer"),
    "console": ("storeedge.firmware.console.main", "technician serial console"),
    "demo": ("storeedge.firmware.demo", "run brokers, gateway, store server and devices"),
    "pki": ("storeedge.pkitool", "store PKI: pki init|enrol|revoke|list|broker-conf"),
    "store": ("storeedge.plan", "store manifest: store plan store.yaml OUTDIR"),
    "config-doc": ("storeedge.docgen", "print docs/config-reference.md (every config key)"),
}


def _usage() -> str:
    lines = ["usage: storeedge <app> [options]   (storeedge <app> --help for more)", "", "apps:"]
    lines += [f"  {name:<13} {doc}" for name, (_mod, doc) in APPS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the app named by the first argument; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in APPS:
        print(f"storeedge: unknown app {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(APPS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
