"""images/lib/initrd-cache.sh: the initrd is reused only while what it is made from is the
same (packages, kernel versions, initramfs/modprobe/udev configuration), verified on reuse."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.imagelib import lib_out, lib_sh


LIBS = ("chroot-guard.sh", "cache.sh", "initrd-cache.sh")


def sh(script: str) -> subprocess.CompletedProcess:
    return lib_sh(LIBS, script)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    for d in ("var/lib/dpkg", "lib/modules/6.1.0-50-arm64", "etc/initramfs-tools/conf.d",
              "usr/share/initramfs-tools/hooks", "boot"):
        (r / d).mkdir(parents=True)
    (r / "var/lib/dpkg/status").write_text("Package: linux-image-6.1.0-50-arm64\n")
    (r / "etc/initramfs-tools/conf.d/storeedge.conf").write_text("MODULES=most\n")
    (r / "usr/share/initramfs-tools/hooks/udev").write_text("#!/bin/sh\n")
    (r / "boot/initrd.img-6.1.0-50-arm64").write_bytes(b"initrd" * 1000)
    return r


def key(root: Path) -> str:
    return lib_out(LIBS, f"initrd_key {root}")


def test_key_follows_what_the_initrd_is_made_from(root):
    first = key(root)
    assert len(first) == 16 and key(root) == first
    (root / "boot/initrd.img-6.1.0-50-arm64").write_bytes(b"other")   # the product: no effect
    assert key(root) == first
    (root / "etc/initramfs-tools/conf.d/storeedge.conf").write_text("MODULES=dep\n")
    second = key(root)
    assert second != first
    (root / "var/lib/dpkg/status").write_text("Package: linux-image-6.1.0-51-arm64\n")
    assert key(root) != second
    (root / "lib/modules/6.1.0-51-arm64").mkdir()
    assert key(root) not in (first, second)


def test_save_restore_and_a_corrupt_cache_is_discarded(root, tmp_path):
    tar = tmp_path / "cache/initrd-arm64-x.tar"
    tar.parent.mkdir()
    assert sh(f"initrd_save {root} {tar}").returncode == 0
    fresh = tmp_path / "fresh"
    (fresh / "boot").mkdir(parents=True)
    assert sh(f"initrd_restore {tar} {fresh}").returncode == 0
    assert (fresh / "boot/initrd.img-6.1.0-50-arm64").read_bytes() == b"initrd" * 1000
    with open(tar, "r+b") as fh:
        fh.seek(600)
        fh.write(b"X")
    other = tmp_path / "other"
    proc = sh(f"initrd_restore {tar} {other}")
    assert proc.returncode == 1 and "corrupt or truncated" in proc.stderr
    assert not tar.exists() and not (other / "boot/initrd.img-6.1.0-50-arm64").exists()


def test_nothing_to_save_says_so(root, tmp_path):
    (root / "boot/initrd.img-6.1.0-50-arm64").unlink()
    proc = sh(f"initrd_save {root} {tmp_path / 'x.tar'}")
    assert proc.returncode == 1 and "no initrd" in proc.stderr
    assert not (tmp_path / "x.tar").exists()
