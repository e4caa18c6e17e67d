"""Dock door config: the ``door`` section (wiring, timers, trust, QR sources).

Example (``door.yaml``)::

    device: {id: door-1, kind: dock_door, store: s0042}
    outbox: {path: /var/lib/storeedge/outbox.db}
    door:
      state_path: /var/lib/storeedge/door.db
      gpio_backend: lgpio                 # or mock (laptop, demo)
      relay: {pin: 17, fail_safe: false, active_high: true}
      contact: {pin: 27}
      rex: {pin: 22}
      tamper: {pin: 23}
      trusted_keys: ["sedpub1:1:Zm9v..."]
      scanner: {url: /dev/ttyACM0, baudrate: 9600}
"""
from __future__ import annotations

from storeedge.drivers.gpio import BACKENDS as GPIO_BACKENDS
from storeedge.config import ConfigError, section, setting
from storeedge.settings import DeviceConfig
from storeedge.firmware.dock_door.hardware import DoorWiring, InputWiring, RelayWiring
from storeedge.doorkeys import parse_public_key_line
from storeedge.exc import KeyFileError
from storeedge.firmware.dock_door.logic import DoorTimings
from storeedge.firmware.dock_door.runtime import DoorOptions, ThrottleOptions

ALARMS = ("forced_open", "held_open", "tamper")


@section
class RelaySection:
    """Lock relay output."""

    pin: int = setting(17, doc="BCM pin number of the relay driver", min=0, max=53)
    fail_safe: bool = setting(False, doc="true for maglocks (energise to lock); false for "
                                         "fail-secure strikes (energise to unlock)")
    active_high: bool = setting(True, doc="false for relay boards that switch on a low level")


@section
class InputSection:
    """One switch input (switch to GND with the internal pull-up by default)."""

    pin: int = setting(27, doc="BCM pin number", min=0, max=53)
    pull_up: bool = setting(True, doc="use the internal pull-up (switch to GND)")
    invert: bool = setting(False, doc="normally-closed switch: invert the active sense")
    bounce_ms: float | None = setting(20.0, unit="ms", min=0, max=1000, doc="debounce time")


@section
class ThrottleSection:
    """Growing back-off after wrong codes."""

    free_failures: int = setting(3, min=1, max=100, doc="wrong codes in a row before blocking")
    base_s: float = setting(5.0, unit="s", min=0.5, max=600, doc="first block; doubles")
    max_s: float = setting(300.0, unit="s", min=1, max=86400, doc="longest block")
    quiet_s: float = setting(600.0, unit="s", min=10, max=86400,
                             doc="no wrong code this long resets the count")


@section
class ScannerSection:
    """Serial QR scanner (line-terminated text)."""

    url: str | None = setting(None, doc="serial device or pyserial URL (None = no scanner)")
    baudrate: int = setting(9600, unit="bit/s", min=1200, max=4_000_000, doc="line speed")


@section
class CameraSection:
    """Camera QR source (drivers.camera backend)."""

    backend: str | None = setting(None, doc="camera backend name (None = no camera)")
    source: str | None = setting(None, doc="replay folder for the replay backend")
    full_frame_every: int = setting(1, unit="frames", min=0, max=100,
                                    doc="full-frame zxing pass period (1 = every frame: the "
                                        "localiser alone misses many QR codes)")
    max_candidates: int = setting(0, min=0, max=64, doc="localiser boxes decoded per frame "
                                                        "(0 = full-frame pass only, fastest)")

    def check(self) -> None:
        from storeedge.drivers.camera import BACKENDS
        if self.backend and self.backend not in BACKENDS:
            raise ConfigError("backend", f"{self.backend!r} is not one of: "
                                         f"{', '.join(sorted(BACKENDS))}")
        if self.backend and self.full_frame_every == 0 and self.max_candidates == 0:
            raise ConfigError("full_frame_every", "0 with max_candidates 0 decodes nothing")


@section
class ProbeSection:
    """Cold-goods probe read into each check-in record (1-Wire DS18B20)."""

    rom: str | None = setting(None, doc="1-Wire ROM id, e.g. 28-0316a2797aff (None = none)",
                              pattern=r"[0-9a-f]{2}-[0-9a-f]{12}")
    backend: str | None = setting(None, doc="1-Wire backend (sysfs, sim); None = default")
    root: str | None = setting(None, doc="sysfs root (None = /sys/bus/w1/devices)")


@section
class DoorSection:
    """The dock door: wiring, timers, trust and QR sources."""

    state_path: str = setting("door.db", doc="SQLite file: used codes, keys, revocations, audit")
    gpio_backend: str | None = setting(None, doc="gpio pin factory; None = $STOREEDGE_GPIO "
                                                 "or lgpio", choices=GPIO_BACKENDS)
    relay: RelaySection = setting(RelaySection)
    contact: InputSection = setting(InputSection)
    rex: InputSection | None = setting(None, doc="request-to-exit button (None = not wired)")
    tamper: InputSection | None = setting(None, doc="tamper switch (None = not wired)")
    monitor: InputSection | None = setting(None, doc="lock-position monitor, active = locked")
    unlock_s: float = setting(10.0, unit="s", min=1, max=120, doc="unlock time after a grant")
    held_open_s: float = setting(60.0, unit="s", min=5, max=3600, doc="held-open alarm after")
    rex_s: float = setting(5.0, unit="s", min=1, max=60, doc="REX unlock/shunt time")
    rex_unlocks: bool = setting(True, doc="REX releases the lock (else it only shunts)")
    jam_s: float = setting(2.0, unit="s", min=0.1, max=30, doc="lock monitor must agree within")
    lockout_on: list[str] = setting(list(ALARMS), doc="alarms that latch a lockout")
    skew_s: float = setting(120.0, unit="s", min=0, max=3600, doc="tolerated clock skew")
    repeat_s: float = setting(3.0, unit="s", min=0, max=60, doc="same code ignored within")
    throttle: ThrottleSection = setting(ThrottleSection)
    trusted_keys: list[str] = setting([], doc="store public keys, 'sedpub1:<kid>:<key>' lines")
    revocations_path: str | None = setting(None, doc="signed revocation list applied at start")
    scanner: ScannerSection = setting(ScannerSection)
    camera: CameraSection = setting(CameraSection)
    probe: ProbeSection = setting(ProbeSection)
    tick_ms: float = setting(20.0, unit="ms", min=5, max=500, doc="timer resolution")
    console_port: str | None = setting(None, doc="serial port of the technician console run "
                                       "inside the door app (None = no console)")

    def check(self) -> None:
        for i, name in enumerate(self.lockout_on):
            if name not in ALARMS:
                raise ConfigError(f"lockout_on[{i}]", f"{name!r} is not one of {', '.join(ALARMS)}")
        for i, line in enumerate(self.trusted_keys):
            try:
                parse_public_key_line(line)
            except KeyFileError as exc:
                raise ConfigError(f"trusted_keys[{i}]", str(exc)) from None
        pins = [s.pin for s in (self.relay, self.contact, self.rex, self.tamper, self.monitor) if s]
        if len(set(pins)) != len(pins):
            raise ConfigError("relay", f"two door signals share a pin: {pins}")


@section
class DoorConfig(DeviceConfig):
    """A dock door device."""

    door: DoorSection = setting(DoorSection)

    def check(self) -> None:
        DeviceConfig.check(self)
        if self.device.kind != "dock_door":
            raise ConfigError("device.kind", f"must be dock_door for a door, not {self.device.kind!r}")


def _input(s: InputSection | None) -> InputWiring | None:
    if s is None:
        return None
    bounce = s.bounce_ms / 1000.0 if s.bounce_ms else None
    return InputWiring(s.pin, pull_up=s.pull_up, invert=s.invert, bounce_s=bounce)


def door_options(cfg: DoorConfig) -> DoorOptions:
    """Plain :class:`DoorOptions` from a validated config."""
    d = cfg.door
    wiring = DoorWiring(RelayWiring(d.relay.pin, d.relay.fail_safe, d.relay.active_high),
                        _input(d.contact), _input(d.rex), _input(d.tamper), _input(d.monitor))
    timings = DoorTimings(d.unlock_s, d.held_open_s, d.rex_s, d.jam_s, d.rex_unlocks,
                          tuple(d.lockout_on))
    t = d.throttle
    return DoorOptions(cfg.device.store, cfg.device.id, d.state_path, wiring, timings,
                       ThrottleOptions(t.free_failures, t.base_s, t.max_s, t.quiet_s),
                       d.skew_s, d.repeat_s)
