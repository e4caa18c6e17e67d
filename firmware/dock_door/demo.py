"""The dock door in ``storeedge demo``: a scheduled delivery opens the door, a replayed code is
refused, an expired code is refused.

The door runs the real app as ``storeedge dock_door`` does (the runner's AppRunner: the outbox, MQTT
link and commands of the device service, then ``app.build``: chained events) on gpiozero
MockFactory pins.  The driver's phone is shown to the camera path (a rendered QR in a
1280x720 frame through the barcode reader); the replay comes through a serial scanner on a pty.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from storeedge.drivers.gpio import new_mock_factory
from storeedge.config import config_from_dict, config_to_dict
from storeedge.audit import ChainEvent, verify_chain
from storeedge.firmware.dock_door.config import DoorConfig
from storeedge.credential import CredentialSpec, generate_signing_key, issue
from storeedge.doorkeys import public_key_line, save_signing_key
from storeedge.qrimage import paste_into_frame, qr_gray
from storeedge.firmware.dock_door.scanner import CameraScanner, door_reader

log = logging.getLogger(__name__)
CONTACT_PIN = 27


@dataclass
class DoorDemo:
    """One demo door (``name``, ``start()``, ``stop()``, ``summary()``)."""

    ctx: object
    dev_id: str = "door-1"
    name: str = "dock door"
    pace: float = 1.0                     # multiplies the scenario's pauses (tests use less)
    decisions: list = field(default_factory=list)

    def _config(self) -> DoorConfig:
        base = config_to_dict(self.ctx.device_config("dock_door", self.dev_id))
        key = generate_signing_key(1)
        save_signing_key(os.path.join(self.ctx.workdir, f"{self.dev_id}-store-key.pem"), key)
        self.key = key
        self.master, slave = os.openpty()
        self.slave = slave
        base["door"] = {"state_path": os.path.join(self.ctx.workdir, f"{self.dev_id}.db"),
                        "gpio_backend": "mock", "rex": {"pin": 22}, "tamper": {"pin": 23},
                        "trusted_keys": [public_key_line(key.kid, key.public)],
                        "scanner": {"url": os.ttyname(slave)}, "repeat_s": 1.0}
        return config_from_dict(base, DoorConfig)

    def start(self) -> None:
        from storeedge import apps
        from storeedge.firmware.common.runner import AppRunner
        cfg = self._config()
        self.factory = new_mock_factory()
        self.runner = AppRunner(apps.app("dock_door"), cfg, self.ctx.clock,
                                parts={"pin_factory": self.factory})
        self.app = self.runner.build()
        self.store = cfg.device.store
        self.runner.start()
        self.factory.pin(CONTACT_PIN).drive_low()          # door closed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scenario, name="door-demo", daemon=True)
        self._thread.start()

    def _code(self, po: str, start_off: float, end_off: float) -> str:
        now = self.ctx.clock.time()
        return issue(self.key, CredentialSpec(self.store, self.dev_id, "Northwind Dairy",
                                              "R. Okafor", po, int(now + start_off),
                                              int(now + end_off)))

    def _scenario(self) -> None:
        ctl = self.app.ctl
        code = self._code("PO-48151", -900, 2700)          # delivery scheduled now +-
        frame = paste_into_frame(qr_gray(code, scale=4), (1280, 720), at=(500, 200))
        frame = np.clip(frame.astype(np.int16) + 6, 0, 255).astype(np.uint8)
        cam = CameraScanner(door_reader(), lambda t: self.decisions.append(
            ("camera", ctl.present(t, "camera"))))
        steps = [(1.0, lambda: cam.handle_frame(frame)),
                 (1.5, lambda: self.factory.pin(CONTACT_PIN).drive_high()),     # driver in
                 (2.0, lambda: self.factory.pin(CONTACT_PIN).drive_low()),      # door shut
                 (1.5, lambda: self._serial(code)),                             # replay
                 (1.5, lambda: self._serial(self._code("PO-0001", -7200, -3600)))]
        for delay, action in steps:
            if self._stop.wait(delay * self.pace):
                return
            action()

    def _serial(self, text: str) -> None:
        before = len(self.app.ctl.p.state.recent_audit(1000))
        os.write(self.master, text.encode() + b"\r\n")
        end = time.monotonic() + 3
        while time.monotonic() < end and len(self.app.ctl.p.state.recent_audit(1000)) == before:
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._final = self._summary()
        self.runner.stop()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def summary(self) -> dict:
        """Grants, denials by reason, check-ins, lock state, relay and the chain check."""
        return getattr(self, "_final", None) or self._summary()

    def _summary(self) -> dict:
        audit = self.app.ctl.p.state.recent_audit(1000)
        denials = Counter(r.body["reason"] for r in audit if r.type == "door.denied")
        report = verify_chain([ChainEvent(self.dev_id, r.type, r.body) for r in audit])
        return {"grants": sum(r.type == "door.granted" for r in audit),
                "denials": dict(denials),
                "checkins": sum(r.type == "door.checkin" for r in audit),
                "state": self.app.ctl.status().state,
                "relay": "unlocked" if self.app.relay.unlocked else "locked",
                "chain": report.summary()}


def demo_devices(ctx, *, pace: float = 1.0) -> list:
    """The demo's door devices (one dock door); ``pace`` scales the scenario's pauses."""
    return [DoorDemo(ctx, pace=pace)]
