"""Device-kind adapters: what the console can test, acknowledge or reset on this device.

The console itself knows nothing about relays, probes or cameras.  A :class:`Target` gives it:

* ``status()``: lines about sensors and inputs for the ``status`` command;
* ``self_test(name)`` for ``test relay|sensors|camera|scanner`` (only the names in ``tests``);
* ``ack(alarm, note)`` (freezer) and ``reset_lockout()`` (dock door);
* ``config_class``: the app's config class, so edits get the app's strict validation;
* ``on_commit(mapping)``: called after every commit (reload hook for the running app).

A command the device kind does not have is refused with a clear message, never faked.
Adapters for the real apps stay thin and call into the apps' own code; :class:`SimulatedTarget`
drives real gpiozero devices on a ``MockFactory``, the camera driver's synthetic backend and
the POS driver's scanner self-test on a real pyserial ``loop://`` port, for the console's tests
and for bench use without hardware (``storeedge console --simulate``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from storeedge.firmware.console.exc import TargetError

TEST_NAMES = ("relay", "sensors", "camera", "scanner")
KIND_TESTS = {"freezer": ("sensors",), "dock_door": ("relay", "sensors"),
              "checkout": ("camera", "scanner"), "gateway": ()}
SIM_SCAN = b"]E04006381333931\r"     # an EAN-13 scan with its AIM prefix, as a scanner sends


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

    def reset_lockout(self, note: str = "") -> str:
        """Clear the device's lockout (``note``: why, for the audit); returns a line."""
        raise TargetError(self._missing("reset lockout") + " (lockouts are on dock doors)")

    live = None     # a firmware.common.liveconfig.LiveConfig when the app applies configs live

    def on_commit(self, mapping: dict) -> None:
        """Called after every commit (and automatic rollback) with the new live mapping:
        the running app applies it (see :mod:`storeedge.firmware.common.liveconfig`)."""
        if self.live is not None:
            self.live.apply(mapping)

    def reload_lines(self, mapping: dict) -> list[str]:
        """What committing ``mapping`` would do to the running app (said before a commit)."""
        if self.live is None:
            return ["(stand-alone console: the running app picks the committed file up within "
                    "1 s: live where it can, otherwise it restarts itself)"]
        return self.live.plan(mapping).lines()

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


def sim_rig_for(cfg) -> SimRig:
    """A :class:`SimRig` on the pins a door config names (relay, contact; the lock monitor
    or else the first free pin reads the relay back), so ``--simulate`` matches the wiring."""
    door = getattr(cfg, "door", None)
    if door is None:
        return SimRig()
    used = {door.relay.pin, door.contact.pin} | {s.pin for s in (door.rex, door.tamper)
                                                 if s is not None}
    sense = door.monitor.pin if door.monitor is not None else min(
        p for p in range(2, 28) if p not in used)
    return SimRig(relay_pin=door.relay.pin, sense_pin=sense, contact_pin=door.contact.pin)


class SimulatedTarget(Target):
    """A device of any ``kind`` on simulated hardware (real gpiozero devices, real loop:// port).

    Args:
        kind: freezer, dock_door, checkout or gateway (decides which commands exist).
        config_class: the config class to validate against.
        factory: a gpiozero ``MockFactory`` (``storeedge.drivers.gpio.new_mock_factory()``).
        rig: pin layout and faults.
        scanner_url: serial URL of the scanner line (``loop://`` echoes what is written).
    """

    def __init__(self, kind: str, config_class: type, factory, *, rig: SimRig | None = None,
                 scanner_url: str = "loop://"):
        super().__init__(config_class)
        import gpiozero
        from gpiozero.pins.mock import MockConnectedPin

        self.kind = kind
        self.tests = KIND_TESTS.get(kind, ())
        self.rig = rig or SimRig()
        sense = factory.pin(self.rig.sense_pin)
        coil = dict(pin_class=MockConnectedPin, input_pin=sense) if self.rig.relay_wired else {}
        factory.pin(self.rig.relay_pin, **coil)
        self.relay = gpiozero.DigitalOutputDevice(self.rig.relay_pin, pin_factory=factory)
        self.sense = gpiozero.DigitalInputDevice(self.rig.sense_pin, pull_up=False,
                                                 pin_factory=factory)
        self.contact = gpiozero.Button(self.rig.contact_pin, pin_factory=factory)
        factory.pin(self.rig.contact_pin).drive_low()   # the simulated door starts closed
        self.scanner_url = scanner_url
        self._checkout: CheckoutTarget | None = None
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
        return self._lane().self_test("camera")

    def _test_scanner(self) -> TestResult:
        return self._lane().self_test("scanner")

    def _lane(self) -> "CheckoutTarget":
        """Camera and scanner through the real drivers: the synthetic camera backend and a
        scan injected into the ``loop://`` scanner line (which hands it straight back)."""
        if self._checkout is None:
            from storeedge.drivers.camera import open_camera
            self._checkout = CheckoutTarget(self.config_class,
                                            camera=open_camera("synthetic", seed=1),
                                            scanner_url=self.scanner_url, scan_wait_s=2.0)
            self._checkout.inject = SIM_SCAN
        return self._checkout

    def ack(self, alarm: str, note: str) -> str:
        if self.kind != "freezer":
            return super().ack(alarm, note)
        if alarm not in self.alarms:
            active = ", ".join(self.alarms) or "none"
            raise TargetError(f"no alarm named {alarm!r} (active alarms: {active})")
        self.alarms[alarm] = note
        return f"alarm {alarm} acknowledged"

    def reset_lockout(self, note: str = "") -> str:
        if self.kind != "dock_door":
            return super().reset_lockout(note)
        was, self.lockout = self.lockout, False
        return "door lockout cleared" if was else "door was not locked out; nothing to reset"

    def on_commit(self, mapping: dict) -> None:
        self.commits.append(mapping)

    def close(self) -> None:
        for dev in (self.relay, self.sense, self.contact):
            dev.close()
        if self._checkout is not None and self._checkout.camera is not None:
            self._checkout.camera.close()


class StandaloneTarget(Target):
    """A device kind whose app is not in this process (``storeedge console`` run on its own).

    Config, status, events and network work; self-tests, ``ack`` and ``reset lockout`` need the
    hardware the app owns, so they are refused with the reason instead of being faked.
    """

    def __init__(self, kind: str, config_class: type):
        super().__init__(config_class)
        self.kind = kind
        self.tests = KIND_TESTS.get(kind, ())

    def _in_app(self, what: str) -> TargetError:
        return TargetError(f"'{what}' runs inside the {self.kind} app, which owns the hardware; "
                           f"this console runs on its own. Use the console the app serves "
                           f"on its serial port, or stop the app and use --simulate.")

    def self_test(self, name: str) -> TestResult:
        self.check_test(name)
        raise self._in_app(f"test {name}")

    def ack(self, alarm: str, note: str) -> str:
        if self.kind != "freezer":
            return super().ack(alarm, note)
        raise self._in_app("ack")

    def reset_lockout(self, note: str = "") -> str:
        if self.kind != "dock_door":
            return super().reset_lockout(note)
        raise self._in_app("reset lockout")


class DoorTarget(Target):
    """Dock door: thin adapter over ``firmware.dock_door.controller.DoorController``.

    Args:
        controller: the running app's controller (``DoorApp.ctl``).
        config_class: ``DoorConfig``.
        pulse_s: how long ``test relay`` releases the lock, seconds.
    """

    kind = "dock_door"
    tests = ("relay", "sensors")

    def __init__(self, controller, config_class: type, *, pulse_s: float = 1.0):
        super().__init__(config_class)
        self.ctl = controller
        self.pulse_s = pulse_s

    def status(self) -> list[StatusLine]:
        st = self.ctl.status()
        return [StatusLine("door", f"{st.state}, {'closed' if st.door_closed else 'OPEN'}"),
                StatusLine("lock relay", "released" if st.relay_unlocked else "locked"),
                StatusLine("lockout", st.lockout or "none"),
                StatusLine("alarms", ", ".join(st.alarms) or "none"),
                StatusLine("fault", st.fault or "none")]

    def self_test(self, name: str) -> TestResult:
        self.check_test(name)
        if name == "relay":
            r = self.ctl.self_test_relay(by="console", pulse_s=self.pulse_s)
            return TestResult(r.ok, [f"relay: {r.detail} (pulse {r.pulse_s:g} s)",
                                     "relay test passed" if r.ok else "relay test FAILED"])
        lines = [f"{s.name}: {s.value}" for s in self.status()]
        return TestResult(True, lines + ["sensor test passed: inputs read"])

    def reset_lockout(self, note: str = "") -> str:
        r = self.ctl.reset_lockout(by="console", note=note)
        if not r.ok:
            raise TargetError(f"lockout not reset: {r.detail}")
        return r.detail


class FreezerTarget(Target):
    """Freezer: thin adapter over ``firmware.freezer.app.FreezerApp``'s console API."""

    kind = "freezer"
    tests = ("sensors",)

    def __init__(self, app, config_class: type, live=None):
        super().__init__(config_class)
        self.app = app
        self.live = live

    def status(self) -> list[StatusLine]:
        lines = [StatusLine(f"probe {p.name}", _probe_text(p)) for p in self.app.probes()]
        alarms = [f"{a.id} {a.condition} {a.probe} ({'acked' if a.acked else 'ACTIVE'})"
                  for a in self.app.alarms()]
        return lines + [StatusLine("alarms", "; ".join(alarms) or "none")]

    def self_test(self, name: str) -> TestResult:
        self.check_test(name)
        probes = self.app.test_sensors()
        bad = [p for p in probes if p.fault]
        lines = [f"{p.name} {p.rom}: {_probe_text(p)}" for p in probes]
        ok = bool(probes) and not bad
        summary = (f"sensor test passed: {len(probes)} probe(s) read" if ok else
                   f"sensor test FAILED: {len(bad)} of {len(probes)} probe(s) faulty"
                   if probes else "sensor test FAILED: no probes configured")
        return TestResult(ok, lines + [summary])

    def ack(self, alarm: str, note: str) -> str:
        from storeedge.firmware.freezer.exc import FreezerError
        try:
            a = self.app.ack(alarm, "console", note)
        except FreezerError as exc:
            open_ids = ", ".join(x.id for x in self.app.alarms()) or "none"
            raise TargetError(f"{exc} (open alarms: {open_ids})") from None
        return f"alarm {a.id} acknowledged"


def _probe_text(p) -> str:
    temp = f"{p.temp_c:.2f} degC" if p.temp_c is not None else "no reading"
    return f"{temp}, FAULT {p.fault}: {p.detail}" if p.fault else temp


class CheckoutTarget(Target):
    """Checkout lane: camera self-test (``drivers.camera.self_test``) and scanner self-test
    (``drivers.pos.scanner_self_test``: the technician scans any code within ``scan_wait_s``).

    Args:
        config_class: the lane's config class.
        camera: an open ``drivers.camera`` Camera (the app's), or None if the lane has none.
        scanner_url: serial URL of the scanner tap, or None.
        clock: time source for the scan wait.
        scan_wait_s: how long ``test scanner`` waits for a scan, seconds.
    """

    kind = "checkout"
    tests = ("camera", "scanner")

    def __init__(self, config_class: type, *, camera=None, scanner_url: str | None = None,
                 clock=None, scan_wait_s: float = 10.0):
        super().__init__(config_class)
        self.camera, self.scanner_url = camera, scanner_url
        self.clock, self.scan_wait_s = clock, scan_wait_s
        self.inject: bytes | None = None     # loopback bench checks only

    def self_test(self, name: str) -> TestResult:
        self.check_test(name)
        return self._camera() if name == "camera" else self._scanner()

    def _camera(self) -> TestResult:
        from storeedge.drivers.camera import self_test
        if self.camera is None:
            return TestResult(False, ["camera test FAILED: no camera configured"])
        r = self_test(self.camera, n_frames=10)
        lines = [f"camera {r.backend}: {r.frames} frames at {r.fps:.1f} fps, main "
                 f"{r.main_size[0]}x{r.main_size[1]}, mean luma {r.mean_luma:.0f}"]
        lines += [f"problem: {p}" for p in r.problems]
        return TestResult(r.ok, lines + ["camera test passed" if r.ok else "camera test FAILED"])

    def _scanner(self) -> TestResult:
        from storeedge.drivers.clock import SystemClock
        from storeedge.drivers.pos import scanner_self_test
        from storeedge.drivers.serial import open_port
        if not self.scanner_url:
            return TestResult(False, ["scanner test FAILED: no scanner port configured"])
        port = open_port(self.scanner_url, timeout=0.1)
        try:
            r = scanner_self_test(port, self.clock or SystemClock(), timeout_s=self.scan_wait_s,
                                  inject=self.inject)
        finally:
            port.close()
        line = (f"scanner read {r.code!r} ({r.symbology})" if r.ok else f"scanner: {r.reason}")
        return TestResult(r.ok, [line, "scanner test passed" if r.ok else "scanner test FAILED"])


TargetFactory = Callable[[str, type], Target]
