"""The A/B boot-slot machinery, run for real against a boot directory in a temp folder.

``rauc-tryboot-backend`` is the RAUC custom bootloader backend shipped in the image;
``install-boot-slot`` copies a root's kernel, initrd, device trees and cmdline into a slot
directory (used by images/build and by the bundle's post-install hook).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.imagelib import load_script

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "images/layers/update-client/rootfs/usr/lib/storeedge"
BACKEND = LIB / "rauc-tryboot-backend"
INSTALL_BOOT_SLOT = LIB / "install-boot-slot"
CONFIG = "[all]\narm_64bit=1\nenable_uart=1\nkernel=vmlinuz\nos_prefix=slot-a/\n"


QEMU_BOOT = load_script("storeedge_qemu_boot", REPO / "images/qemu-boot")


class Device:
    """A boot partition plus the kernel command line and tryboot flag the device would have."""

    def __init__(self, tmp: Path):
        self.boot = tmp / "boot"
        self.boot.mkdir()
        (self.boot / "config.txt").write_text(CONFIG)
        self.cmdline = tmp / "cmdline"
        self.flag = tmp / "tryboot"
        self.boot_into("A", tryboot=False)

    def boot_into(self, slot: str, tryboot: bool) -> None:
        self.cmdline.write_text(f"console=serial0,115200 ro rauc.slot={slot}\n")
        self.flag.write_bytes((1 if tryboot else 0).to_bytes(4, "big"))

    def reset(self, tryboot: bool) -> str:
        """Which slot the Pi firmware boots after a reset (with or without the tryboot flag),
        decided by the qemu harness's own firmware model (images/qemu-boot)."""
        trial = self.boot / "tryboot.txt"
        choice = QEMU_BOOT.pi_firmware_choice((self.boot / "config.txt").read_text(),
                                              trial.read_text() if trial.exists() else None,
                                              tryboot)
        self.boot_into(choice.slot, tryboot)
        return choice.slot

    def backend(self, *args: str, check: bool = True) -> str:
        env = dict(os.environ, STOREEDGE_BOOT_DIR=str(self.boot),
                   STOREEDGE_CMDLINE=str(self.cmdline), STOREEDGE_DT_TRYBOOT=str(self.flag))
        proc = subprocess.run([sys.executable, str(BACKEND), *args], env=env,
                              capture_output=True, text=True, timeout=30)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip() if check else proc.stderr


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def test_update_commits_only_after_mark_good_on_the_trial_slot(device):
    assert device.backend("get-primary") == "A"
    assert device.backend("get-current") == "A"
    device.backend("set-primary", "B")                     # rauc install into slot B
    assert device.backend("get-primary") == "B"
    assert "os_prefix=slot-b/" in (device.boot / "tryboot.txt").read_text()
    assert "enable_uart=1" in (device.boot / "tryboot.txt").read_text()
    assert "os_prefix=slot-a/" in (device.boot / "config.txt").read_text()
    assert device.reset(tryboot=True) == "B"               # reboot '0 tryboot'
    status = json.loads(device.backend("status"))
    assert status["trial"] is True and status["tryboot_flag"] is True
    device.backend("set-state", "B", "good")               # rauc status mark-good
    assert "os_prefix=slot-b/" in (device.boot / "config.txt").read_text()
    assert not (device.boot / "tryboot.txt").exists()
    assert device.reset(tryboot=False) == "B"              # later normal boots stay on B
    assert json.loads(device.backend("status"))["trial"] is False


def test_a_trial_that_never_gets_healthy_falls_back(device):
    device.backend("set-primary", "B")
    assert device.reset(tryboot=True) == "B"
    # B hangs or its app never becomes healthy: the watchdog resets without the tryboot flag.
    assert device.reset(tryboot=False) == "A"
    assert device.backend("get-current") == "A"
    # mark-good on the committed slot must not commit the armed one
    device.backend("set-state", "A", "good")
    assert "os_prefix=slot-a/" in (device.boot / "config.txt").read_text()
    device.backend("set-state", "B", "bad")                # disarm the failed update
    assert device.backend("get-primary") == "A"
    assert device.backend("get-state", "B") == "bad"
    assert not (device.boot / "tryboot.txt").exists()


def test_set_primary_of_the_committed_slot_disarms(device):
    device.backend("set-primary", "B")
    device.backend("set-primary", "A")
    assert device.backend("get-primary") == "A"
    assert not (device.boot / "tryboot.txt").exists()


def test_backend_rejects_bad_input(device):
    assert "unknown boot slot" in device.backend("set-primary", "C", check=False)
    (device.boot / "config.txt").write_text("[all]\nkernel=vmlinuz\n")
    assert "no os_prefix" in device.backend("get-primary", check=False)


def _fake_root(root: Path, version: str = "6.1.0-99-arm64") -> Path:
    (root / "boot").mkdir(parents=True)
    (root / f"boot/vmlinuz-{version}").write_bytes(b"kernel")
    (root / f"boot/initrd.img-{version}").write_bytes(b"initrd")
    dtbs = root / f"usr/lib/linux-image-{version}/broadcom"
    dtbs.mkdir(parents=True)
    for name in ("bcm2711-rpi-4-b.dtb", "bcm2711-rpi-cm4-io.dtb", "bcm2837-rpi-3-b.dtb"):
        (dtbs / name).write_bytes(b"dtb")
    shipped = root / "usr/lib/storeedge/boot"
    (shipped / "overlays").mkdir(parents=True)
    (shipped / "overlays/w1-gpio.dtbo").write_bytes(b"overlay")
    for slot, part in (("A", "02"), ("B", "03")):
        (shipped / f"cmdline-{slot}.txt").write_text(f"root=PARTUUID=x-{part} rauc.slot={slot}\n")
    return root


def test_install_boot_slot_copies_kernel_dtbs_and_cmdline(tmp_path):
    root, boot = _fake_root(tmp_path / "root"), tmp_path / "boot"
    boot.mkdir()
    proc = subprocess.run(["sh", str(INSTALL_BOOT_SLOT), str(root), "B", str(boot)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    slot = boot / "slot-b"
    assert (slot / "vmlinuz").read_bytes() == b"kernel"
    assert (slot / "initrd.img").read_bytes() == b"initrd"
    assert (slot / "cmdline.txt").read_text() == "root=PARTUUID=x-03 rauc.slot=B\n"
    assert (slot / "overlays/w1-gpio.dtbo").exists()
    assert sorted(p.name for p in slot.glob("*.dtb")) == ["bcm2711-rpi-4-b.dtb",
                                                           "bcm2711-rpi-cm4-io.dtb"]
    assert not (boot / "slot-a").exists()


def test_install_boot_slot_prefers_the_image_patched_device_trees(tmp_path):
    root, boot = _fake_root(tmp_path / "root"), tmp_path / "boot"
    patched = root / "usr/lib/storeedge/boot/dtbs"
    patched.mkdir()
    (patched / "bcm2711-rpi-4-b.dtb").write_bytes(b"dtb with onewire")
    subprocess.run(["sh", str(INSTALL_BOOT_SLOT), str(root), "A", str(boot)], check=True,
                   capture_output=True, timeout=30)
    assert (boot / "slot-a/bcm2711-rpi-4-b.dtb").read_bytes() == b"dtb with onewire"
    assert not (boot / "slot-a/bcm2711-rpi-cm4-io.dtb").exists()


def test_install_boot_slot_refuses_a_root_without_a_kernel(tmp_path):
    root = _fake_root(tmp_path / "root")
    for kernel in (root / "boot").glob("vmlinuz-*"):
        kernel.unlink()
    proc = subprocess.run(["sh", str(INSTALL_BOOT_SLOT), str(root), "A", str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "kernel" in proc.stderr


# ----------------------------------------------------------------- the qemu harness's firmware


def test_harness_firmware_reads_tryboot_txt_only_with_the_flag():
    choose = QEMU_BOOT.pi_firmware_choice
    trial = CONFIG.replace("slot-a/", "slot-b/")
    assert choose(CONFIG, trial, tryboot=True) == ("tryboot.txt", "slot-b/", "B")
    assert choose(CONFIG, trial, tryboot=False) == ("config.txt", "slot-a/", "A")
    assert choose(CONFIG, None, tryboot=True) == ("config.txt", "slot-a/", "A")
    assert choose(CONFIG + "os_prefix=slot-b/\n", None, False).slot == "B"   # the last wins
    with pytest.raises(SystemExit, match="config.txt names no slot"):
        choose("[all]\nkernel=vmlinuz\n", None, False)
    with pytest.raises(SystemExit, match="tryboot.txt names no slot"):
        choose(CONFIG, "os_prefix=slot-c/\n", True)


def test_harness_reads_how_a_boot_ended_from_the_console():
    ended = QEMU_BOOT.reboot_request
    assert ended(["[  61.2] reboot: Restarting system with command '0 tryboot'"]) == \
        ("reboot", True)
    assert ended(["x", "[  12.0] reboot: Restarting system"]) == ("reboot", False)
    assert ended(["[  99.1] reboot: Power down"]) == ("poweroff", False)
    assert ended(["Kernel panic - not syncing: Attempted to kill init!"]) == ("panic", False)
    assert ended(["Started storeedge freezer app.", "i6300esb: ..."]) == ("reset", False)


def test_harness_and_backend_play_the_ab_update_and_the_fall_back(device):
    """The boot files the real backend writes, read by the harness's firmware model, with
    the tryboot flag taken from the kernel's reboot line as the harness does."""
    device.backend("set-primary", "B")                          # rauc install into B
    line = "reboot: Restarting system with command '0 tryboot'"  # systemctl reboot '0 tryboot'
    assert device.reset(QEMU_BOOT.reboot_request([line]).tryboot) == "B"
    assert json.loads(device.backend("status"))["trial"] is True
    # The new app never becomes healthy: the watchdog resets the board, no reboot line.
    assert device.reset(QEMU_BOOT.reboot_request(["storeedge@freezer: failed"]).tryboot) == "A"
    device.backend("set-state", "B", "bad")
    # A second, good update: mark-good commits B and later plain reboots stay there.
    device.backend("set-primary", "B")
    assert device.reset(QEMU_BOOT.reboot_request([line]).tryboot) == "B"
    device.backend("set-state", "B", "good")
    plain = QEMU_BOOT.reboot_request(["reboot: Restarting system"])
    assert device.reset(plain.tryboot) == "B"


def test_harness_persists_the_disk_only_when_asked(tmp_path):
    img = tmp_path / "disk.img"
    snap = QEMU_BOOT.qemu_argv(img, img, img, "ro", 512)
    keep = QEMU_BOOT.qemu_argv(img, img, img, "ro", 512, persist=True)
    assert f"file={img},format=raw,if=virtio,snapshot=on" in snap
    assert f"file={img},format=raw,if=virtio" in keep and "-no-reboot" in keep
