"""Device-kind adapters: what the console can test, acknowledge or reset on this device.

The console itself knows nothing about relays, probes or cameras.  A :class:`Target` gives it:

* ``status()``: lines about sensors and inputs for the ``status`` command;
* ``self_test(name)`` for ``test relay|sensors|camera|scanner`` (only the names in ``tests``);
* ``ack(alarm, note)`` (freezer) and ``reset_lockout()`` (dock door);
* ``config_class``: the app's config class, so edits get the app's strict validation;
* ``on_commit(mapping)``: called after every commit (reload hook for the running app).

A command the device kind does not have is refused with a clear message, never faked.
Adapters for the real apps stay thin and call into the apps' own code; :class:`SimulatedTarget`
drives real gpiozero devices on a ``MockFactory`` and a real pyserial ``loop://`` port, for the
console's tests and for bench use without hardware.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from storeedge.firmware.console.exc import TargetError

TEST_NAMES = ("relay", "sensors", "camera", "scanner")


@dataclass(frozen=True)
class StatusLine:
    """One ``name: value`` line of the status report."""

    name: str
    value: str


@dataclass(frozen=True)
class TestResult:
    """Outcome of a self-test: pass/fail and the lines to print (each under 80 columns)."""

    passed: bool
    lines: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return self.lines[-1] if self.lines else ("passed" if self.passed else "failed")


class Target:
    """Base adapter: a device kind with no tests, alarms or lockouts (override what applies)."""

    kind = "device"
    tests: tuple[str, ...] = ()

    def __init__(self, config_class: type):
        self.config_class = config_class

    def status(self) -> list[StatusLine]:
        """Sensor and input states for ``status``."""
        return []

    def self_test(self, name: str) -> TestResult:
        """Run self-test ``name`` (one of :attr:`tests`)."""
        raise TargetError(self._missing(f"test {name}"))

    def ack(self, alarm: str, note: str) -> str:
        """Acknowledge ``alarm`` with ``note``; returns a confirmation line."""
        raise TargetError(self._missing("ack") + " (alarms are acknowledged on freezers)")

    def reset_lockout(self) -> str:
        """Clear the device's lockout; returns a confirmation line."""
        raise TargetError(self._missing("reset lockout") + " (lockouts are on dock doors)")

    def on_commit(self, mapping: dict) -> None:
        """Called after every commit with the new live config mapping."""

    def close(self) -> None:
        """Release hardware."""

    def _missing(self, what: str) -> str:
        have = ", ".join(f"test {t}" for t in self.tests) or "no self-tests"
        return f"'{what}' is not available on a {self.kind} device (it has: {have})"

    def check_test(self, name: str) -> None:
        """Raise TargetError unless ``name`` is a self-test of this device kind."""
        if name not in self.tests:
            raise TargetError(self._missing(f"test {name}"))


@dataclass
class SimRig:
    """Simulated bench hardware on a gpiozero MockFactory (pin numbers are BCM).

    Attributes:
        relay_pin: output driving the relay coil.
        sense_pin: input wired to the relay's contact (reads the relay back).
        contact_pin: a door/reed contact input (status and sensor test).
        relay_wired: False simulates a broken relay (contact never follows the coil).
    """

    relay_pin: int = 17
    sense_pin: int = 27
    contact_pin: int = 22
    relay_wired: bool = True


class SimulatedTarget(Target):
    """A device of any ``kind`` on simulated hardware (real gpiozero devices, real loop:// port).

    Args:
        kind: freezer, dock_door, checkout or gateway (decides which commands exist).
        config_class: the config class to validate against.
        factory: a gpiozero ``MockFactory`` (``storeedge.drivers.gpio.new_mock_factory()``).
        rig: pin layout and faults.
        scanner_url: serial URL of the scanner line (``loop://`` echoes what is written).
    """

    KIND_TESTS = {"freezer": ("sensors",), "dock_door": ("relay", "sensors"),
                  "checkout": ("camera", "scanner"), "gateway": ()}

    def __init__(self, kind: str, config_class: type, factory, *, rig: SimRig | None = None,
                 scanner_url: str = "loop://"):
        super().__init__(config_class)
        import gpiozero
        from gpiozero.pins.mock import MockConnectedPin

        self.kind = kind
        self.tests = self.KIND_TESTS.get(kind, ())
        self.rig = rig or SimRig()
        sense = factory.pin(self.rig.sense_pin)
        coil = dict(pin_class=MockConnectedPin, input_pin=sense) if self.rig.relay_wired else {}
        factory.pin(self.rig.relay_pin, **coil)
        self.relay = gpiozero.DigitalOutputDevice(self.rig.relay_pin, pin_factory=factory)
        self.sense = gpiozero.DigitalInputDevice(self.rig.sense_pin, pull_up=False,
                                                 pin_factory=factory)
        self.contact = gpiozero.Button(self.rig.contact_pin, pin_factory=factory)
        self.scanner_url = scanner_url
        self.alarms: dict[str, str] = {}      # active alarm name -> ack note ("" = unacked)
        self.lockout = False
        self.commits: list[dict] = []

    def status(self) -> list[StatusLine]:
        lines = [StatusLine("door contact", "closed" if self.contact.is_pressed else "open"),
                 StatusLine("relay", "on" if self.relay.value else "off")]
        if self.kind == "freezer":
            text = ", ".join(f"{a} ({'acked' if n else 'ACTIVE'})" for a, n in self.alarms.items())
            lines.append(StatusLine("alarms", text or "none"))
        if self.kind == "dock_door":
            lines.append(StatusLine("lockout", "LOCKED" if self.lockout else "none"))
        return lines

    def self_test(self, name: str) -> TestResult:
        self.check_test(name)
        return {"relay": self._test_relay, "sensors": self._test_sensors,
                "camera": self._test_camera, "scanner": self._test_scanner}[name]()

    def _test_relay(self) -> TestResult:
        lines, ok = [], True
        for want in (True, False):
            self.relay.value = want
            got = bool(self.sense.value)
            ok &= got == want
            lines.append(f"relay {'on ' if want else 'off'}: contact reads "
                         f"{'closed' if got else 'open'} ({'ok' if got == want else 'FAIL'})")
        self.relay.off()
        lines.append("relay test passed" if ok else "relay test FAILED: contact does not follow")
        return TestResult(ok, lines)

    def _test_sensors(self) -> TestResult:
        state = "closed" if self.contact.is_pressed else "open"
        return TestResult(True, [f"door contact (GPIO{self.rig.contact_pin}): {state}",
                                 "sensor test passed: 1 input read"])

    def _test_camera(self) -> TestResult:
        return TestResult(False, ["camera: no simulated camera on this rig",
                                  "camera test FAILED: no camera"])

    def _test_scanner(self) -> TestResult:
        from storeedge.drivers.serial import open_port

        probe = b"\x16SE-SELFTEST\r"
        port = open_port(self.scanner_url, timeout=0.5)
        try:
            port.reset_input_buffer()
            port.write(probe)
            reply = port.read(len(probe))
        finally:
            port.close()
        ok = reply == probe
        return TestResult(ok, [f"scanner line {self.scanner_url}: sent {len(probe)} bytes, "
                               f"read back {len(reply)}",
                               "scanner test passed" if ok else "scanner test FAILED"])

    def ack(self, alarm: str, note: str) -> str:
        if self.kind != "freezer":
            return super().ack(alarm, note)
        if alarm not in self.alarms:
            active = ", ".join(self.alarms) or "none"
            raise TargetError(f"no alarm named {alarm!r} (active alarms: {active})")
        self.alarms[alarm] = note
        return f"alarm {alarm} acknowledged"

    def reset_lockout(self) -> str:
        if self.kind != "dock_door":
            return super().reset_lockout()
        was, self.lockout = self.lockout, False
        return "door lockout cleared" if was else "door was not locked out; nothing to reset"

    def on_commit(self, mapping: dict) -> None:
        self.commits.append(mapping)

    def close(self) -> None:
        for dev in (self.relay, self.sense, self.contact):
            dev.close()


TargetFactory = Callable[[str, type], Target]
