"""images/lib/pyenv-cache.sh: the app's venv and the wheel build env are reused while what they
are made from is the same (root packages, wheels, install script, dependency lists); the cache
never holds storeedge itself, and is verified on reuse."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.imagelib import lib_out, lib_sh

SITE = "opt/storeedge/venv/lib/python3.11/site-packages"


LIBS = ("chroot-guard.sh", "cache.sh", "pyenv-cache.sh")


def sh(script: str) -> subprocess.CompletedProcess:
    return lib_sh(LIBS, script)


def put(path: Path, text: str = "", mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@pytest.fixture
def root(tmp_path):
    """A root as install-storeedge.sh leaves it: a venv with numpy and storeedge (its RECORD
    lists its files and console script), and the wheel build env."""
    r = tmp_path / "root"
    put(r / "var/lib/dpkg/status", "Package: python3.11\nVersion: 3.11.2-6\n")
    put(r / "opt/storeedge/venv/bin/python", "#!/bin/sh\n", 0o755)
    put(r / "opt/storeedge/venv/bin/storeedge", "#!/opt/storeedge/venv/bin/python\n", 0o755)
    put(r / SITE / "numpy/__init__.py", "version = '2.1'\n")
    put(r / SITE / "storeedge/__init__.py", "")
    put(r / SITE / "storeedge/native/_locate_cy.cpython-311-aarch64-linux-gnu.so", "elf")
    put(r / SITE / "storeedge-0.1.dist-info/METADATA", "Name: storeedge\n")
    put(r / SITE / "storeedge-0.1.dist-info/RECORD", "\n".join([
        "storeedge/__init__.py,sha256=x,0",
        "storeedge/native/_locate_cy.cpython-311-aarch64-linux-gnu.so,sha256=y,3",
        "storeedge-0.1.dist-info/METADATA,,",
        "storeedge-0.1.dist-info/RECORD,,",
        "../../../bin/storeedge,sha256=z,36", ""]))
    put(r / "tmp/storeedge-build/buildenv/bin/pip", "#!/bin/sh\n", 0o755)
    put(r / "tmp/storeedge-build/buildenv/lib/python3.11/site-packages/Cython/__init__.py", "")
    b = r / "tmp/storeedge-build"
    put(b / "wheels/numpy-2.1-cp311-manylinux_aarch64.whl", "numpy wheel")
    put(b / "python-packages.txt", "")
    put(b / "layers/storeedge-app/install-storeedge.sh", "#!/bin/sh\n")
    put(b / "src/setup.py", "install_requires=['numpy>=2']\n")
    put(b / "src/pyproject.toml", "[build-system]\n")
    put(b / "src/storeedge/app.py", "print('v1')\n")
    return r


def key(root: Path) -> str:
    return lib_out(LIBS, f"pyenv_key {root} {root}/tmp/storeedge-build")


def test_key_follows_what_the_environments_are_made_from(root):
    b = root / "tmp/storeedge-build"
    first = key(root)
    assert len(first) == 16 and key(root) == first
    (b / "src/storeedge/app.py").write_text("print('v2')\n")     # the app's own code: no effect
    assert key(root) == first
    seen = {first}
    for path, text in [("wheels/numpy-2.1-cp311-manylinux_aarch64.whl", "another build"),
                       ("python-packages.txt", "opencv-python-headless\n"),
                       ("layers/storeedge-app/install-storeedge.sh", "#!/bin/sh\nset -e\n"),
                       ("src/setup.py", "install_requires=['numpy>=2', 'pyyaml']\n")]:
        (b / path).write_text(text)
        seen.add(key(root))
    (root / "var/lib/dpkg/status").write_text("Package: python3.11\nVersion: 3.11.2-6+deb12u1\n")
    seen.add(key(root))
    assert len(seen) == 6


def test_save_leaves_storeedge_out_and_restore_marks_the_build(root, tmp_path):
    tar = tmp_path / "cache/pyenv-arm64-x.tar"
    tar.parent.mkdir()
    proc = sh(f"pyenv_save {root} {tar}")
    assert proc.returncode == 0, proc.stderr
    assert (root / SITE / "storeedge/__init__.py").exists()      # the root itself is untouched
    fresh = tmp_path / "fresh"
    (fresh / "tmp/storeedge-build").mkdir(parents=True)
    proc = sh(f"pyenv_restore {tar} {fresh}")
    assert proc.returncode == 0, proc.stderr
    assert (fresh / SITE / "numpy/__init__.py").read_text() == "version = '2.1'\n"
    assert os.access(fresh / "opt/storeedge/venv/bin/python", os.X_OK)
    assert (fresh / "tmp/storeedge-build/buildenv/bin/pip").exists()
    assert (fresh / "tmp/storeedge-build/pyenv-cached").exists()
    assert not (fresh / SITE / "storeedge").exists()
    assert not list((fresh / SITE).glob("storeedge-*.dist-info"))
    assert not (fresh / "opt/storeedge/venv/bin/storeedge").exists()


def test_a_corrupt_or_missing_cache_is_not_used(root, tmp_path):
    tar = tmp_path / "pyenv-arm64-x.tar"
    fresh = tmp_path / "fresh"
    assert sh(f"pyenv_restore {tar} {fresh}").returncode == 1            # absent
    assert sh(f"pyenv_save {root} {tar}").returncode == 0
    with open(tar, "r+b") as fh:
        fh.seek(600)
        fh.write(b"\xff" * 16)
    proc = sh(f"pyenv_restore {tar} {fresh}")
    assert proc.returncode == 1
    assert not tar.exists() and not (fresh / "tmp/storeedge-build/pyenv-cached").exists()


def test_nothing_is_cached_without_an_installed_storeedge(root, tmp_path):
    tar = tmp_path / "pyenv-arm64-x.tar"
    for record in (root / SITE).glob("storeedge-*.dist-info/RECORD"):
        record.unlink()
    proc = sh(f"pyenv_save {root} {tar}")
    assert proc.returncode == 1 and "storeedge is not installed" in proc.stderr
    assert not tar.exists()
    (root / "tmp/storeedge-build/buildenv/bin/pip").unlink()
    proc = sh(f"pyenv_save {root} {tar}")
    assert proc.returncode == 1 and "nothing cached" in proc.stderr
