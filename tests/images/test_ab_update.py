"""The A/B update end to end in a VM (``-m image``; ``make test-image`` runs it for the freezer).

One disk (a copy of the built freezer image) and five qemu boots, the harness playing the Pi
firmware's slot choice from the boot partition's config.txt / tryboot.txt:

1. slot A, a signed bundle in /data/update/inbox: the guest installs it into slot B
   (storeedge-update-inbox -> storeedge-update -> rauc install) and reboots '0 tryboot';
2. tryboot -> slot B: the app comes up, storeedge-mark-good commits B (config.txt names B);
3. slot B, a bundle whose app exits 1: installed into slot A, reboot '0 tryboot';
4. tryboot -> slot A: the app never gets healthy, mark-good marks A bad and reboots normally;
5. slot B again (the committed one): the failed update is recorded and reported as a
   ``device.update_failed`` event in the app's outbox; a bundle signed by another CA in the
   inbox is refused (moved aside with RAUC's reason), slot B keeps running.

Bundles 3 and 5 are made from the build's root file system without another build
(images/lib/test-bundle.sh).  Facts of every boot: images/out/freezer/ab/boot-N.json and
boot-N-console.log.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.image, pytest.mark.timeout(3 * 3600)]

KIND = "freezer"
# mark-good's health window, shortened for the test (the device default is 120 s / 900 s).
HEALTH = ["--setenv", "STOREEDGE_HEALTH_SETTLE_S=30", "--setenv", "STOREEDGE_HEALTH_DEADLINE_S=150"]


def sh(script: str, **env: str) -> str:
    """Run bash ``script`` with images/lib/test-bundle.sh sourced; stdout+stderr."""
    lib = Path(__file__).resolve().parents[2] / "images/lib/test-bundle.sh"
    proc = subprocess.run(["bash", "-c", f". {lib}\n{script}"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


class DataPartition:
    """The disk's 4th partition (/data), edited offline with debugfs between boots."""

    def __init__(self, disk: Path, kit, work: Path):
        qb = kit.load("ab_qemu_boot", "qemu-boot")
        self.disk, self.work = disk, work
        self.offset, self.size = qb.partitions(disk)[3]

    def _extract(self) -> Path:
        part = self.work / "data.ext4"
        with open(self.disk, "rb") as src, open(part, "wb") as dst:
            src.seek(self.offset)
            left = self.size
            while left:
                block = src.read(min(left, 1 << 24))
                dst.write(block)
                left -= len(block)
        return part

    def _store(self, part: Path) -> None:
        with open(part, "rb") as src, open(self.disk, "r+b") as dst:
            dst.seek(self.offset)
            shutil.copyfileobj(src, dst, 1 << 24)
            dst.flush()
            os.fsync(dst.fileno())

    def put_bundle(self, bundle: Path, name: str) -> None:
        part = self._extract()
        cmds = self.work / "debugfs.cmds"
        cmds.write_text(f"mkdir update\nmkdir update/inbox\n"
                        f"write {bundle} update/inbox/{name}\n")
        subprocess.run(["debugfs", "-w", "-f", str(cmds), str(part)], capture_output=True)
        size = self.cat_size(part, f"update/inbox/{name}")
        assert size == bundle.stat().st_size, f"could not write {name} into /data ({size})"
        self._store(part)
        part.unlink()

    @staticmethod
    def cat_size(part: Path, path: str) -> int:
        out = subprocess.run(["debugfs", "-R", f"stat {path}", str(part)],
                             capture_output=True, text=True).stdout
        for word in out.replace("\n", " ").split("Size: ")[1:2]:
            return int(word.split()[0])
        return -1

    def read(self, path: str) -> str:
        part = self._extract()
        out = subprocess.run(["debugfs", "-R", f"cat {path}", str(part)],
                             capture_output=True, text=True).stdout
        part.unlink()
        return out


def boot(kit, disk: Path, n: int, ab: Path, *extra: str) -> dict:
    facts = kit.boot(KIND, "--disk", str(disk), *HEALTH, *extra, timeout=2400)
    (ab / f"boot-{n}.json").write_text(json.dumps(facts, indent=1) + "\n")
    console = kit.images / "out" / KIND / "logs" / "qemu-console.log"
    shutil.copyfile(console, ab / f"boot-{n}-console.log")
    print(f"boot {n}: slot {facts['boot_slot']} ({facts['boot_config']}), {facts['state']}, "
          f"{facts['seconds']} s, ended {facts['reboot_action']} tryboot={facts['reboot_tryboot']}")
    return facts


def boot_config(kit, disk: Path, work: Path) -> str:
    qb = kit.load("ab_qemu_boot", "qemu-boot")
    return qb.read_boot_file(disk, "config.txt", work).read_text()


def make_bundles(kit, built: dict, ab: Path) -> tuple[Path, Path, Path]:
    """The build's bundle; one whose app exits 1; one signed by another CA."""
    rootfs = kit.images / "out" / KIND / "images" / "rootfs.ext4"
    broken = ab / "rootfs-broken.ext4"
    subprocess.run(["cp", "--sparse=always", str(rootfs), str(broken)], check=True)
    bad, foreign = ab / "broken.raucb", ab / "foreign.raucb"
    sh(f"test_bundle_break_app {broken} && "
       f"test_bundle_make {KIND} {built['version']}-broken {broken} {bad}")
    other = ab / "other-pki"
    subprocess.run([str(kit.images / "make-dev-ca"), str(other)], check=True,
                   capture_output=True)
    sh(f"test_bundle_make {KIND} {built['version']}-foreign {rootfs} {foreign}",
       STOREEDGE_SIGNING_CERT=str(other / "signing.cert.pem"),
       STOREEDGE_SIGNING_KEY=str(other / "signing.key.pem"),
       STOREEDGE_KEYRING=str(other / "ca.cert.pem"))
    broken.unlink()
    return Path(built["bundle"]), bad, foreign


def test_ab_update_commit_fallback_and_foreign_ca(images_kit):
    kit = images_kit
    built = kit.build(KIND)
    ab = kit.images / "out" / KIND / "ab"
    shutil.rmtree(ab, ignore_errors=True)
    ab.mkdir(parents=True)
    good, bad, foreign = make_bundles(kit, built, ab)
    disk = ab / "disk.img"
    subprocess.run(["cp", "--sparse=always", built["image"], str(disk)], check=True)
    data = DataPartition(disk, kit, ab)

    data.put_bundle(good, "good.raucb")
    b1 = boot(kit, disk, 1, ab)
    assert (b1["boot_slot"], b1["boot_config"]) == ("A", "config.txt"), b1
    assert (b1["reboot_action"], b1["reboot_tryboot"]) == ("reboot", True), b1
    attempt = json.loads(data.read("update/attempt.json"))
    assert (attempt["state"], attempt["from"], attempt["to"]) == ("installed", "A", "B")

    b2 = boot(kit, disk, 2, ab, "--tryboot")
    assert (b2["boot_slot"], b2["boot_config"]) == ("B", "tryboot.txt"), b2
    assert b2["state"] == "done" and b2["unit_active"] == "active", b2
    assert "marked good and committed" in b2["update_mark_good"], b2
    assert json.loads(b2["update_status"])["committed"] == "B"
    assert "os_prefix=slot-b/" in boot_config(kit, disk, ab)
    assert json.loads(b2["update_attempt"])["state"] == "committed"

    data.put_bundle(bad, "broken.raucb")
    b3 = boot(kit, disk, 3, ab)
    assert (b3["boot_slot"], b3["boot_config"]) == ("B", "config.txt"), b3
    assert (b3["reboot_action"], b3["reboot_tryboot"]) == ("reboot", True), b3

    b4 = boot(kit, disk, 4, ab, "--tryboot")
    assert (b4["boot_slot"], b4["boot_config"]) == ("A", "tryboot.txt"), b4
    assert (b4["reboot_action"], b4["reboot_tryboot"]) == ("reboot", False), b4
    console4 = (ab / "boot-4-console.log").read_text(errors="replace")
    assert "deliberately broken app" in console4 or "marked bad" in console4

    data.put_bundle(foreign, "foreign.raucb")
    b5 = boot(kit, disk, 5, ab)
    assert (b5["boot_slot"], b5["boot_config"]) == ("B", "config.txt"), b5
    assert b5["state"] == "done" and b5["unit_active"] == "active", b5
    assert b5["rauc_booted"] == "B"
    assert "FAILED" in b5["update_outcome"] and "device.update_failed seq=" in b5["update_outcome"]
    failed = json.loads(b5["update_attempt"])
    assert (failed["state"], failed["to"], failed["from"]) == ("failed", "A", "B"), failed
    assert failed["event"].startswith("device.update_failed seq="), failed
    assert "refused foreign.raucb" in b5["update_inbox"], b5["update_inbox"]
    assert "signature" in b5["update_inbox"].lower() or "verif" in b5["update_inbox"].lower()
    assert json.loads(b5["update_status"])["states"]["A"] == "bad"
    assert "os_prefix=slot-b/" in boot_config(kit, disk, ab)
    disk.unlink()
