"""images/lib/test-bundle.sh: the A/B test's bundles, made from a root filesystem without a
build, on a small real ext4 image and with the real rauc (no root needed).

A bundle whose app is broken must carry exactly that change (read back from the bundle RAUC
extracts), be signed by the build's CA and be refused by another one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
APP = "/opt/storeedge/venv/bin/storeedge"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("rauc", "openssl", "mksquashfs", "mkfs.ext4", "debugfs")),
    reason="needs rauc, openssl, squashfs-tools and e2fsprogs (images/install-build-deps)")


def sh(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f". '{IMAGES}/lib/test-bundle.sh'; {script}",
                           "test-bundle", *args], capture_output=True, text=True, timeout=180,
                          env=env)


def debugfs_cat(fs: Path, path: str) -> str:
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(fs)], capture_output=True,
                          text=True, timeout=60).stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp("pki")
    for name in ("build", "other"):
        subprocess.run([str(IMAGES / "make-dev-ca"), str(base / name)], check=True,
                       capture_output=True, timeout=60)
    return base


@pytest.fixture
def rootfs(tmp_path) -> Path:
    """A small ext4 root with a working app entry point and a kernel-like file."""
    root = tmp_path / "root"
    app = root / APP.lstrip("/")
    app.parent.mkdir(parents=True)
    app.write_text("#!/bin/sh\nexec python3 -m storeedge \"$@\"\n")
    app.chmod(0o755)
    (root / "etc").mkdir()
    (root / "etc/hostname").write_text("storeedge-freezer\n")
    (root / "boot").mkdir()
    (root / "boot/vmlinuz").write_bytes(os.urandom(256 * 1024))   # does not compress away
    fs = tmp_path / "rootfs.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs), "8M"], check=True,
                   capture_output=True, timeout=60)
    return fs


def test_break_app_replaces_only_the_entry_point(rootfs):
    done = sh('test_bundle_break_app "$1"', str(rootfs))
    assert done.returncode == 0, done.stderr
    assert "exits 1" in done.stderr
    script = debugfs_cat(rootfs, APP)
    assert script.startswith("#!/bin/sh\n") and script.rstrip().endswith("exit 1")
    assert debugfs_cat(rootfs, "/etc/hostname") == "storeedge-freezer\n"
    stat = subprocess.run(["debugfs", "-R", f"stat {APP}", str(rootfs)], capture_output=True,
                          text=True, timeout=60).stdout
    assert "Mode:  0755" in stat
    fsck = subprocess.run(["e2fsck", "-fn", str(rootfs)], capture_output=True, timeout=60)
    assert fsck.returncode == 0


def test_break_app_fails_clearly_without_the_app(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    fs = tmp_path / "empty.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs), "4M"], check=True,
                   capture_output=True, timeout=60)
    failed = sh('test_bundle_break_app "$1"', str(fs))
    assert failed.returncode == 1
    assert f"could not replace {APP}" in failed.stderr


def test_broken_bundle_is_signed_by_the_build_ca_only(rootfs, pki, tmp_path):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "STOREEDGE_PKI_DIR": str(pki / "build")}
    assert sh('test_bundle_break_app "$1"', str(rootfs)).returncode == 0
    bundle = tmp_path / "freezer-broken.raucb"
    made = sh('test_bundle_make freezer 9.9.9-broken "$1" "$2"', str(rootfs), str(bundle),
              env=env)
    assert made.returncode == 0, made.stderr
    info = subprocess.run(["rauc", "info", f"--keyring={pki / 'build/ca.cert.pem'}",
                           str(bundle)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    assert "'storeedge-freezer'" in info.stdout and "'9.9.9-broken'" in info.stdout
    sq = subprocess.run(["unsquashfs", "-s", str(bundle)], capture_output=True, text=True,
                        timeout=60)
    assert "Compression zstd" in sq.stdout, sq.stdout       # images/rauc/mksquashfs-args
    other = subprocess.run(["rauc", "info", f"--keyring={pki / 'other/ca.cert.pem'}",
                            str(bundle)], capture_output=True, text=True, timeout=60)
    assert other.returncode != 0 and "signature verification failed" in other.stderr
    out = tmp_path / "extracted"
    subprocess.run(["rauc", "extract", f"--keyring={pki / 'build/ca.cert.pem'}", str(bundle),
                    str(out)], check=True, capture_output=True, timeout=120)
    assert debugfs_cat(out / "rootfs.ext4", APP).rstrip().endswith("exit 1")
    assert (out / "hook").read_text() == (IMAGES / "rauc/hook").read_text()


def test_bundle_for_an_unknown_kind_is_refused(rootfs, pki, tmp_path):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "STOREEDGE_PKI_DIR": str(pki / "build")}
    failed = sh('test_bundle_make toaster 1 "$1" "$2"', str(rootfs), str(tmp_path / "x.raucb"),
                env=env)
    assert failed.returncode == 1 and "cannot render the toaster manifest" in failed.stderr
    assert not (tmp_path / "x.raucb").exists()
