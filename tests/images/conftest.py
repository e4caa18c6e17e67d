"""Shared by the image tests: build a kind once (with a test device identity) and boot it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers.imagelib import load_script

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
TEST_STORE = "s0001"


def load_images_module(name: str, filename: str):
    """Import images/<filename> (a script without .py as well) as module ``name``."""
    return load_script(name, IMAGES / filename)


def device_id(kind: str) -> str:
    return f"qemu-{kind}"


def identity_dir(kind: str) -> Path:
    """A test store PKI with one enrolled device per kind; the kind's bundle folder."""
    from storeedge.exc import PKIError
    from storeedge.pki import StorePKI
    pki_dir = IMAGES / "out/test-store-pki"
    image = load_images_module("conftest_imagegen", "imagegen.py").load_kind(kind)
    try:
        pki = StorePKI(pki_dir)
    except (PKIError, OSError, ValueError):   # none yet, or broken by an interrupted run
        shutil.rmtree(pki_dir, ignore_errors=True)
        pki = StorePKI.init(pki_dir, TEST_STORE)
    if pki.get(device_id(kind)) is None:
        pki.enrol(device_id(kind), image.device_kind)
    return pki.bundle_dir(device_id(kind))


def _newest_source_mtime() -> float:
    """The newest mtime (epoch s) of a file under images/, not walking into images/out (a
    concurrent build has a live /proc mounted in its root there) or __pycache__."""
    newest = 0.0
    for top, dirs, files in os.walk(IMAGES):
        if Path(top) == IMAGES:
            dirs[:] = [d for d in dirs if d != "out"]
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            newest = max(newest, os.lstat(os.path.join(top, name)).st_mtime)
    return newest


def build_image(kind: str) -> dict:
    """``images/build KIND`` with a test identity, unless a build newer than every file in
    images/ exists (STOREEDGE_IMAGE_REBUILD=1 forces one); its build-summary.json."""
    if os.geteuid() != 0:
        pytest.fail("the image build needs root (mmdebstrap --mode=root, chroot)")
    out = IMAGES / "out" / kind
    summary = out / "build-summary.json"
    newest = _newest_source_mtime()
    fresh = summary.exists() and summary.stat().st_mtime > newest
    if not fresh or os.environ.get("STOREEDGE_IMAGE_REBUILD") == "1":
        env = {**os.environ, "STOREEDGE_IDENTITY_DIR": str(identity_dir(kind))}
        log = out / "make-test-image.log"      # not in logs/: the build empties that
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as fh:
            proc = subprocess.run(["nice", "-n", "10", str(IMAGES / "build"), kind],
                                  stdout=fh, stderr=subprocess.STDOUT, text=True,
                                  timeout=2 * 3600, env=env)
        tail = log.read_text(errors="replace")[-4000:]
        print(tail)
        assert proc.returncode == 0, f"images/build {kind} failed (log {log}):\n{tail}"
    return json.loads(summary.read_text())


def qemu_boot(kind: str, *args: str, timeout: float = 2400) -> dict:
    """Run images/qemu-boot KIND ARGS...; its JSON facts (the last stdout line)."""
    subprocess.run([str(IMAGES / "install-build-deps"), "--qemu"], check=True,
                   capture_output=True)
    proc = subprocess.run(["nice", "-n", "10", str(IMAGES / "qemu-boot"), kind,
                           "--timeout", str(timeout), *args],
                          capture_output=True, text=True, timeout=timeout + 300)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"qemu-boot printed nothing:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])


class ImagesKit:
    """What the image tests share (a fixture: conftest modules are not importable)."""

    images = IMAGES
    store = TEST_STORE
    build = staticmethod(build_image)
    boot = staticmethod(qemu_boot)
    device_id = staticmethod(device_id)
    load = staticmethod(load_images_module)


@pytest.fixture(scope="session")
def images_kit() -> ImagesKit:
    return ImagesKit()
