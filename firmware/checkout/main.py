"""``storeedge checkout``: run the lane app (wired in :func:`~.app.build`, run by the runner).

    storeedge checkout --config lane.yaml
    storeedge checkout --config lane.yaml --validate-config
"""
from __future__ import annotations

from storeedge import apps
from storeedge.cmdline import app_parser
from storeedge.firmware.common.runner import run_app


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = app_parser("checkout", "self-checkout lane: item passes vs POS scans, alerts")
    return run_app(apps.app("checkout"), argv, parser=parser)


if __name__ == "__main__":
    raise SystemExit(main())
