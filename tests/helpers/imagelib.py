"""Run the shell functions of images/lib/*.sh from the fast image tests."""
from __future__ import annotations

import subprocess
from pathlib import Path

IMAGES_LIB = Path(__file__).resolve().parents[2] / "images" / "lib"


def lib_sh(libs: tuple[str, ...], script: str, opts: str = "set -u"
           ) -> subprocess.CompletedProcess:
    """bash ``script`` after ``opts`` and with ``libs`` (file names in images/lib) sourced."""
    prelude = " ".join(f". {IMAGES_LIB / name};" for name in libs)
    return subprocess.run(["bash", "-c", f"{opts}; {prelude}\n{script}"], capture_output=True,
                          text=True, timeout=60)


def lib_out(libs: tuple[str, ...], script: str, opts: str = "set -u") -> str:
    """:func:`lib_sh` that must exit 0: its stdout, stripped."""
    proc = lib_sh(libs, script, opts)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()
