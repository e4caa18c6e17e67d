"""gpio-safe (the door unit's ExecStartPre/ExecStopPost): drives the lock relay's line to its
safe level, fails clearly on a board without the chip, and with STOREEDGE_GPIO=mock (qemu's virt
board, which has no Pi header) drives nothing and says so."""
from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = (Path(__file__).resolve().parents[2]
          / "images/layers/storeedge-app/rootfs/usr/lib/storeedge/gpio-safe")


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=30)


def test_missing_chip_fails_naming_it():
    proc = run("17", "0", STOREEDGE_GPIOCHIP="gpiochip-storeedge-none")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("gpio-safe: /dev/gpiochip-storeedge-none missing; "
                                   "cannot drive GPIO 17 to 0")


def test_simulated_pins_drive_nothing_and_say_so():
    proc = run("17", "0", STOREEDGE_GPIO="mock", STOREEDGE_GPIOCHIP="gpiochip-storeedge-none")
    assert proc.returncode == 0
    assert proc.stderr.strip() == ("gpio-safe: WARNING: STOREEDGE_GPIO=mock (simulated pins): "
                                   "GPIO 17 NOT driven to 0")


def test_usage_without_arguments():
    proc = run()
    assert proc.returncode != 0 and "usage: gpio-safe PIN VALUE" in proc.stderr
