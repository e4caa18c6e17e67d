"""images/lib/native-cache.sh: each compiled kernel is cached on its own, so a change to one
kernel's source recompiles only that kernel; a shared header or the build inputs every kernel
shares recompile all; caches are verified on reuse."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.imagelib import lib_out, lib_sh

COMMON = "mirror day setup wheels"
SO_DIR = "build/lib.linux-aarch64-cpython-311/storeedge/native"


LIBS = ("chroot-guard.sh", "cache.sh", "native-cache.sh")
STRICT = "set -euo pipefail"         # as images/build runs them


def sh(script: str) -> subprocess.CompletedProcess:
    return lib_sh(LIBS, script, STRICT)


def ok(script: str) -> str:
    return lib_out(LIBS, script, STRICT)


@pytest.fixture
def src(tmp_path):
    """A source tree after a build: two kernels, their generated .c and their .so."""
    s = tmp_path / "src"
    (s / "native").mkdir(parents=True)
    (s / SO_DIR).mkdir(parents=True)
    for k in ("_locate_cy", "_scan_match_cy"):
        (s / "native" / f"{k}.pyx").write_text(f"# {k} v1\n")
        (s / "native" / f"{k}.c").write_text(f"/* {k} generated */\n")
        (s / SO_DIR / f"{k}.cpython-311-aarch64-linux-gnu.so").write_bytes(b"\x7fELF" + k.encode())
    (s / "native" / "_locate_py.py").write_text("# the twin\n")
    return s


def keys(src: Path) -> dict[str, str]:
    return {k: ok(f"native_key {src} {k} '{COMMON}'").strip()
            for k in ok(f"native_kernels {src}").split()}


def test_each_kernel_has_its_own_key(src):
    first = keys(src)
    assert sorted(first) == ["_locate_cy", "_scan_match_cy"]
    assert all(len(k) == 16 for k in first.values()) and len(set(first.values())) == 2
    (src / "native/_locate_py.py").write_text("# the twin, changed\n")    # Python: no effect
    assert keys(src) == first
    (src / "native/_locate_cy.pyx").write_text("# _locate_cy v2\n")
    second = keys(src)
    assert second["_locate_cy"] != first["_locate_cy"]
    assert second["_scan_match_cy"] == first["_scan_match_cy"]
    (src / "native/shared.pxd").write_text("cdef int x\n")                 # shared: all change
    third = keys(src)
    assert all(third[k] != second[k] for k in third)
    assert ok(f"native_key {src} _scan_match_cy 'other compiler'").strip() != third["_scan_match_cy"]


def test_only_the_changed_kernel_is_rebuilt(src, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    ok(f"native_save {cache} {src} '{COMMON}' _locate_cy _scan_match_cy")
    assert len(list(cache.glob("native-aarch64-_*_cy-*.tar"))) == 2

    fresh = tmp_path / "fresh"                       # the next build: a new source tree ...
    (fresh / "native").mkdir(parents=True)
    for k in ("_locate_cy", "_scan_match_cy"):
        (fresh / "native" / f"{k}.pyx").write_text(f"# {k} v1\n")
    (fresh / "native/_locate_cy.pyx").write_text("# _locate_cy v2\n")    # ... one kernel changed
    assert ok(f"native_restore {cache} {fresh} '{COMMON}'").split() == ["_scan_match_cy"]
    assert (fresh / "native/_scan_match_cy.c").read_text() == "/* _scan_match_cy generated */\n"
    so = fresh / SO_DIR / "_scan_match_cy.cpython-311-aarch64-linux-gnu.so"
    assert so.read_bytes() == b"\x7fELF_scan_match_cy"
    assert so.stat().st_mtime > (fresh / "native/_scan_match_cy.pyx").stat().st_mtime - 1
    assert not (fresh / "native/_locate_cy.c").exists()


def test_a_corrupt_cache_is_rebuilt_and_a_missing_product_is_said(src, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    ok(f"native_save {cache} {src} '{COMMON}' _locate_cy")
    tar = next(cache.glob("native-aarch64-_locate_cy-*.tar"))
    with open(tar, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\0" * 8)
    fresh = tmp_path / "fresh"
    (fresh / "native").mkdir(parents=True)
    (fresh / "native/_locate_cy.pyx").write_text("# _locate_cy v1\n")
    assert ok(f"native_restore {cache} {fresh} '{COMMON}'").split() == []
    assert not tar.exists()
    (src / "native/_scan_match_cy.c").unlink()
    proc = sh(f"native_save {cache} {src} '{COMMON}' _scan_match_cy")
    assert proc.returncode == 1 and "_scan_match_cy: no .so or .c" in proc.stderr
    assert not list(cache.glob("native-aarch64-_scan_match_cy-*"))
