"""First-boot provisioning (images/layers/storeedge-app/.../provision), run for real.

Real bundles from the store PKI (``storeedge.pki``: the folder ``storeedge pki enrol`` writes)
are put in a temp ``/data``; the check script shipped in the image decides whether the device
may go live.  A missing, incomplete, loosely permitted, foreign or mismatched identity is
refused with the one-line hint on the console; a complete one is accepted and its id and store
land in the app config.  The provisioning file on the boot partition is imported and deleted.
"""
from __future__ import annotations

import configparser
import importlib.util
import io
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from storeedge.pki import StorePKI

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "images/layers/storeedge-app/rootfs"
SCRIPT = LAYER / "usr/lib/storeedge/provision"
HINT = "not provisioned: copy the device bundle to /data/identity (see docs/images.md)"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the provisioning check needs the openssl command")


def _rendered_config() -> str:
    """The dock-door image's default app config exactly as images/imagegen.py renders it."""
    spec = importlib.util.spec_from_file_location("provision_imagegen", REPO / "images/imagegen.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.render_app_config(module.load_kind("dock-door"))


CONFIG = _rendered_config()


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    """Two store PKIs: s0042 (ours, with door-1, door-2 and a freezer) and s0099 (another)."""
    base = tmp_path_factory.mktemp("pki")
    ours = StorePKI.init(base / "s0042", "s0042")
    for dev, kind in (("door-1", "dock_door"), ("door-2", "dock_door"), ("fz-1", "freezer")):
        ours.enrol(dev, kind)
    other = StorePKI.init(base / "s0099", "s0099")
    other.enrol("door-1", "dock_door")
    return ours, other


class Device:
    """A data and boot partition in temp folders, the image.env of a dock-door image."""

    def __init__(self, tmp: Path):
        self.data, self.boot = tmp / "data", tmp / "boot"
        (self.data / "storeedge").mkdir(parents=True)
        self.boot.mkdir()
        self.env = tmp / "image.env"
        self.env.write_text("STOREEDGE_KIND=dock-door\nSTOREEDGE_APP=door\n")
        self.config = self.data / "storeedge/door.yaml"
        self.config.write_text(CONFIG)
        (self.data / "storeedge/console.secret").write_text("scrypt$placeholder\n")

    @property
    def identity(self) -> Path:
        return self.data / "identity"

    def copy_bundle(self, pki: StorePKI, dev: str) -> Path:
        shutil.copytree(pki.bundle_dir(dev), self.identity)
        return self.identity

    def provision(self, owner: str | None = None) -> subprocess.CompletedProcess:
        owner = owner or pwd.getpwuid(os.geteuid()).pw_name     # the app user on a device
        return subprocess.run([sys.executable, str(SCRIPT), "--data", str(self.data),
                               "--boot", str(self.boot), "--image-env", str(self.env),
                               "--owner", owner], capture_output=True, text=True, timeout=60)


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def refused(proc: subprocess.CompletedProcess, why: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith(f"storeedge-provision: {HINT}: "), lines
    assert why in lines[-1], lines[-1]
    assert proc.stderr == "", "no traceback for an expected failure"


def test_complete_bundle_is_accepted_and_names_the_device(device, pkis):
    ours, _ = pkis
    device.copy_bundle(ours, "door-1")
    proc = device.provision()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == \
        "storeedge-provision: provisioned as door-1 (store s0042, kind dock_door)"
    text = device.config.read_text()
    assert "  id: door-1\n" in text and "  store: s0042\n" in text
    assert text.startswith("# storeedge door config") and "gpio_backend" not in text   # lgpio on the device
    assert text.replace("door-1", "dockdoor-unset").replace("s0042", "s0000") == CONFIG
    again = device.provision()                   # idempotent: nothing to change the second time
    assert again.returncode == 0 and "set device.id" not in again.stdout


def test_identity_is_handed_to_the_app_user(device, pkis):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown to another user")
    folder = device.copy_bundle(pkis[0], "door-1")
    nobody = pwd.getpwnam("nobody")
    proc = device.provision(owner="nobody")
    assert proc.returncode == 0, proc.stdout
    for path in (folder, *folder.iterdir()):
        assert (path.stat().st_uid, path.stat().st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert (folder / "door-1.key").stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    missing = device.provision(owner="no-such-user-xyz")
    assert missing.returncode == 0 and "no user 'no-such-user-xyz'" in missing.stdout


def test_missing_identity_refuses(device):
    refused(device.provision(), f"{device.identity} does not exist")


@pytest.mark.parametrize("remove", ["command.pub", "e2e.key", "door-1.key", "ca.crt"])
def test_incomplete_bundle_refuses(device, pkis, remove):
    folder = device.copy_bundle(pkis[0], "door-1")
    (folder / remove).unlink()
    refused(device.provision(), f"{folder / remove} is missing")


def test_loose_permissions_refuse(device, pkis):
    folder = device.copy_bundle(pkis[0], "door-1")
    (folder / "door-1.key").chmod(0o644)
    refused(device.provision(), "door-1.key is readable by group/others (mode 0644; chmod 0600)")
    (folder / "door-1.key").chmod(0o600)
    folder.chmod(0o777)
    refused(device.provision(), "is writable by group/others")
    folder.chmod(0o700)
    assert device.provision().returncode == 0


def test_certificate_from_another_store_refuses(device, pkis):
    ours, other = pkis
    folder = device.copy_bundle(other, "door-1")
    shutil.copy(ours.ca_crt, folder / "ca.crt")           # our CA, their certificate
    refused(device.provision(), "door-1.crt is not issued by")


def test_key_of_another_device_refuses(device, pkis):
    ours, _ = pkis
    folder = device.copy_bundle(ours, "door-1")
    shutil.copy(ours.bundle_dir("door-2") / "door-2.key", folder / "door-1.key")
    refused(device.provision(), "door-1.key does not belong to")


def test_identity_of_another_kind_refuses(device, pkis):
    device.copy_bundle(pkis[0], "fz-1")
    refused(device.provision(), "fz-1 is enrolled as kind 'freezer'; this image is 'dock_door'")


def test_config_naming_another_device_refuses(device, pkis):
    device.copy_bundle(pkis[0], "door-1")
    device.config.write_text(CONFIG.replace("dockdoor-unset", "door-7"))
    refused(device.provision(), "device.id is 'door-7' but the identity says 'door-1'")


def test_missing_console_secret_is_warned_not_fatal(device, pkis):
    device.copy_bundle(pkis[0], "door-1")
    (device.data / "storeedge/console.secret").unlink()
    proc = device.provision()
    assert proc.returncode == 0
    assert "WARNING: no technician console secret" in proc.stdout


def _tar_of(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(folder, arcname=".")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_provisioning_file_on_the_boot_partition_is_imported_and_deleted(device, pkis):
    ours, _ = pkis
    tar_path = device.boot / "storeedge-identity.tar"
    tar_path.write_bytes(_tar_of(ours.bundle_dir("door-1")))
    proc = device.provision()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"imported the identity from {tar_path}" in proc.stdout
    assert not tar_path.exists(), "the private key must not stay on the FAT partition"
    assert (device.identity / "door-1.key").stat().st_mode & 0o777 == 0o600
    assert (device.identity / "door-1.crt").read_bytes() == \
        (ours.bundle_dir("door-1") / "door-1.crt").read_bytes()
    assert not list(device.data.glob(".identity-*"))


def test_hostile_provisioning_file_is_refused_and_leaves_nothing(device, pkis):
    tar_path = device.boot / "storeedge-identity.tar"
    tar_path.write_bytes(_tar_of(pkis[0].bundle_dir("door-1"), {"../../etc/evil": b"x"}))
    refused(device.provision(), "unexpected entry '../../etc/evil'")
    assert not device.identity.exists() and not list(device.data.glob(".identity-*"))
    tar_path.write_bytes(b"not a tar at all" * 10)
    refused(device.provision(), "is not a readable tar")


def test_app_unit_requires_the_provisioning_unit():
    def unit(path: Path) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read(path)
        return parser

    app = unit(LAYER / "etc/systemd/system/storeedge@.service")["Unit"]
    assert "storeedge-provision.service" in app["Requires"].split()
    assert "storeedge-provision.service" in app["After"].split()
    prov = unit(LAYER / "etc/systemd/system/storeedge-provision.service")
    assert prov["Service"]["Type"] == "oneshot" and prov["Service"]["RemainAfterExit"] == "yes"
    assert prov["Service"]["StandardOutput"] == "journal+console"
    assert prov["Service"]["ExecStart"] == "/usr/lib/storeedge/provision"
    console = unit(REPO / "images/layers/serial-console/rootfs/etc/systemd/system/"
                   "storeedge-console.service")["Unit"]
    assert "storeedge-provision" not in str(dict(console)), \
        "the technician console must come up on an unprovisioned device"


def test_selftest_reports_which_camera_backends_load():
    """The image self-test's camera probe, run in this venv: V4L2 loads (no device here),
    picamera2 and libcamera say why they do not."""
    import json
    import runpy

    selftest = runpy.run_path(str(REPO / "images/layers/base/rootfs/usr/lib/storeedge/selftest"),
                              run_name="selftest")
    proc = subprocess.run([sys.executable, "-c", selftest["CAMERA_PROBE"]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"v4l2", "picamera2", "libcamera"}
    assert result["v4l2"].startswith("loads; devices: ")
    from importlib.util import find_spec
    from storeedge.drivers.camera.libcam import search_dirs
    for name, module in (("picamera2", "picamera2"), ("libcamera", "libcamera")):
        expect = "loads" if find_spec(module) or name == "libcamera" and any(
            os.path.isfile(os.path.join(d, "libcamera/__init__.py")) for d in search_dirs()) \
            else "fails: "
        assert result[name].startswith(expect), result
