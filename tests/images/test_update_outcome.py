"""update-outcome (shipped in the image) against the real tryboot backend and a real outbox.

The record of an install, its commit on a healthy trial, and the failure of a trial that did
not commit (mark-good marked it bad, or the trial boot never came up): the trial slot ends bad
and disarmed, and the app's outbox holds one sealed ``device.update_failed`` event.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storeedge.events import REGISTRY, load_all_event_types

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "images/layers/update-client/rootfs/usr/lib/storeedge"
CONFIG = "[all]\narm_64bit=1\nkernel=vmlinuz\nos_prefix=slot-a/\n"


class Device:
    """Boot partition, kernel command line and data partition of one simulated device."""

    def __init__(self, tmp: Path):
        self.boot, self.data = tmp / "boot", tmp / "data"
        self.boot.mkdir()
        (self.boot / "config.txt").write_text(CONFIG)
        (self.data / "storeedge").mkdir(parents=True)
        (self.data / "identity").mkdir()
        key = self.data / "identity" / "e2e.key"
        key.write_bytes(os.urandom(32))
        key.chmod(0o600)
        (self.data / "storeedge" / "freezer.yaml").write_text(
            "device: {id: fz-7, kind: freezer, store: s0042}\n"
            f"outbox: {{path: outbox.db}}\nsecurity: {{e2e_key: {key}}}\n")
        self.image_env = tmp / "image.env"
        self.image_env.write_text("STOREEDGE_KIND=freezer\nSTOREEDGE_APP=freezer\n")
        self.cmdline = tmp / "cmdline"
        self.slot("A")

    def slot(self, name: str) -> None:
        self.cmdline.write_text(f"ro rauc.slot={name}\n")

    def env(self) -> dict:
        return {**os.environ, "STOREEDGE_BOOT_DIR": str(self.boot),
                "STOREEDGE_CMDLINE": str(self.cmdline),
                "STOREEDGE_DT_TRYBOOT": str(self.cmdline.parent / "no-flag"),
                "STOREEDGE_TRYBOOT_BACKEND": str(LIB / "rauc-tryboot-backend"),
                "STOREEDGE_EMIT_EVENT": f"{sys.executable} {LIB / 'emit-event'}",
                "STOREEDGE_EMIT_AS": "", "STOREEDGE_IMAGE_ENV": str(self.image_env),
                "STOREEDGE_DATA_DIR": str(self.data)}

    def backend(self, *args: str) -> str:
        return subprocess.run([sys.executable, str(LIB / "rauc-tryboot-backend"), *args],
                              env=self.env(), check=True, capture_output=True,
                              text=True).stdout

    def outcome(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, str(LIB / "update-outcome"), *args],
                              env=self.env(), capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def record(self) -> dict:
        return json.loads((self.data / "update" / "attempt.json").read_text())

    def install_into_b(self) -> None:
        """What storeedge-update does after ``rauc install``: RAUC set B primary."""
        self.backend("set-primary", "B")
        self.outcome("installed", "/data/storeedge-freezer-2.raucb")

    def events(self) -> list:
        from storeedge.firmware.common.outbox import Identity, Outbox
        from storeedge.settings import OutboxSection
        box = Outbox(OutboxSection(path=str(self.data / "storeedge" / "outbox.db")),
                     Identity("fz-7", "freezer", "s0042"))
        try:
            return box.recent(10)
        finally:
            box.close()


@pytest.fixture
def device(tmp_path):
    return Device(tmp_path)


def test_the_event_type_is_registered():
    load_all_event_types()
    assert "device.update_failed" in REGISTRY


def test_install_then_commit_on_a_healthy_trial(device):
    device.install_into_b()
    rec = device.record()
    assert (rec["state"], rec["from"], rec["to"]) == ("installed", "A", "B")
    device.slot("B")                                   # the tryboot reboot
    assert "trial boot of slot B" in device.outcome("boot")
    device.backend("set-state", "B", "good")           # mark-good: rauc status mark-good
    device.outcome("committed")
    assert device.record()["state"] == "committed"
    device.slot("B")
    assert "no update pending" in device.outcome("boot")
    assert device.events() == []


def test_a_trial_marked_bad_is_reported_once(device):
    device.install_into_b()
    device.slot("B")
    device.backend("set-state", "B", "bad")            # mark-good gave up: mark-bad
    device.slot("A")                                   # the normal reboot: slot A
    out = device.outcome("boot")
    assert "FAILED" in out and "did not get healthy" in out, out
    rec = device.record()
    assert rec["state"] == "failed" and rec["event"] == "device.update_failed seq=1", rec
    events = device.events()
    assert [e.type for e in events] == ["device.update_failed"]
    body = events[0].body
    assert (body["slot"], body["running"]) == ("B", "A") and "mark-good" in body["reason"]
    assert events[0].dev == "fz-7" and events[0].seal, "sealed with the device's key"
    assert "no update pending" in device.outcome("boot")   # never twice
    assert len(device.events()) == 1


def test_a_trial_that_never_came_up_is_disarmed_and_reported(device):
    device.install_into_b()
    assert (device.boot / "tryboot.txt").exists()
    out = device.outcome("boot")                       # reset without the flag: slot A
    assert "did not come up" in out, out
    status = json.loads(device.backend("status"))
    assert status["armed"] is None and status["states"]["B"] == "bad"
    assert status["committed"] == "A"
    assert device.record()["event"] == "device.update_failed seq=1"


def test_an_outbox_held_by_a_running_app_is_said_not_reported(device):
    device.install_into_b()
    from storeedge.firmware.common.outbox import Identity, Outbox
    from storeedge.settings import OutboxSection
    box = Outbox(OutboxSection(path=str(device.data / "storeedge" / "outbox.db")),
                 Identity("fz-7", "freezer", "s0042"))
    try:
        out = device.outcome("boot")
    finally:
        box.close()
    rec = device.record()
    assert rec["state"] == "failed" and rec["event"].startswith("not reported: "), rec
    assert "FAILED" in out


def test_a_failed_gateway_update_is_spooled_for_the_gateway(device):
    """The gateway has no outbox: the event goes to its spool, which the running gateway
    sends as its own (tests/firmware/gateway/test_spool.py)."""
    from storeedge.firmware.gateway.own import read_spooled
    (device.data / "storeedge" / "gateway.yaml").write_text(
        "device: {id: gw-1, kind: gateway, store: s0042}\noutbox: null\n"
        "relay: {db_path: gateway.db}\n")
    device.image_env.write_text("STOREEDGE_KIND=gateway\nSTOREEDGE_APP=gateway\n")
    device.install_into_b()
    device.backend("set-state", "B", "bad")
    device.slot("A")
    out = device.outcome("boot")
    assert "FAILED" in out and "device.update_failed spooled" in out, out
    spooled = list((device.data / "storeedge" / "own-spool").glob("*.json"))
    assert len(spooled) == 1, spooled
    body = read_spooled(spooled[0])
    assert (body.slot, body.running) == ("B", "A") and "mark-good" in body.reason
    assert device.record()["event"].startswith("device.update_failed spooled ")
