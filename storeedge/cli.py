"""The one command: ``storeedge <app> [options]``.

Each device app is declared in its ``spec.py`` (:mod:`storeedge.apps`) with a module whose
``main(argv: list[str]) -> int`` runs it; the other commands are the :data:`TOOLS`.  This file
only dispatches, so importing the CLI never imports an app's hardware libraries.

Examples::

    storeedge gateway --config gateway.yaml
    storeedge freezer --config freezer.yaml --validate-config
    storeedge demo --duration 30
"""
from __future__ import annotations

import importlib
import sys

from storeedge import apps
from storeedge.exc import AppSpecError, exit_code_of

TOOLS: dict[str, tuple[str, str]] = {
    "store-server": ("storeedge.server.main", "store-side reference consumer"),
    "console": ("storeedge.firmware.console.main", "technician serial console"),
    "demo": ("storeedge.firmware.demo", "run brokers, gateway, store server and devices"),
    "pki": ("storeedge.pkitool", "store PKI: pki init|enrol|revoke|list|broker-conf"),
    "store": ("storeedge.plan", "store manifest: store plan store.yaml OUTDIR"),
    "config-doc": ("storeedge.docgen", "print docs/config-reference.md (every config key)"),
}
"""Commands that are not device apps (the device apps come from :mod:`storeedge.apps`)."""


def _usage() -> str:
    lines = ["usage: storeedge <app> [options]   (storeedge <app> --help for more)", "",
             "device apps:"]
    for spec in apps.all_apps():
        also = f" [also named: {', '.join(spec.aliases)}]" if spec.aliases else ""
        lines.append(f"  {spec.kind:<13} {spec.summary}{also}")
    lines += ["", "tools:"] + [f"  {name:<13} {doc}" for name, (_mod, doc) in TOOLS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the app named by the first argument; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name in TOOLS:
        return int(importlib.import_module(TOOLS[name][0]).main(rest) or 0)
    spec = apps.find(name)
    if spec is None:
        print(f"storeedge: unknown app {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        entry = spec.main_function()
    except AppSpecError as exc:             # declared, but its main cannot be imported
        print(f"storeedge: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    return int(entry(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
