"""For the fast image tests: run the shell functions of images/lib/*.sh, and import the
images' Python scripts (files without .py: images/qemu-boot, the layers' tools)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
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


def load_script(name: str, path: Path):
    """Import the Python script at ``path`` (with or without .py) as module ``name``."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
