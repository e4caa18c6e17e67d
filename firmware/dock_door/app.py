"""A running door device: relay first, then the event service, the controller, QR sources and
the timer loop.  Wired in :func:`build` (``AppSpec.build``), which the runner calls for
``storeedge dock_door --config`` and for the demo; :func:`before_sink` builds the lock relay before
the runner opens the outbox.

Signed commands from the store server (``se/v1/{store}/dock_door/{dev}/cmd/{name}``, never
retained; roles per ``storeedge.signing.COMMAND_ROLES``; ``by`` from the signed identity):

* ``reset_lockout`` ``{"note": str}`` -> ``{"ok", "detail"}`` (manager)
* ``revocations`` ``{"list": "<signed revocation list JSON>"}`` -> ``{"serial", "creds", "keys"}``
* ``keys`` ``{"keyset": "<signed key announcement JSON>"}`` -> ``{"serial", "added", "trusted"}``
* ``door_status`` ``{}`` -> the :class:`DoorStatus` fields

No network command moves the relay: the relay self-test is a local console action only.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from storeedge.drivers import gpio
from storeedge.drivers.clock import Clock, SystemClock
from storeedge.firmware.common.runner import EventSink
from storeedge.firmware.common.service import Command
from storeedge.firmware.dock_door.config import DoorConfig, door_options
from storeedge.firmware.dock_door.controller import DoorController
from storeedge.firmware.dock_door.events import event_from_body
from storeedge.exc import RevocationListError
from storeedge.firmware.dock_door.hardware import build_relay
from storeedge.doorkeys import parse_public_key_line
from storeedge.firmware.dock_door.runtime import DoorSeams, build_door
from storeedge.firmware.dock_door.scanner import (CameraScanner, ScanLineParser, SerialScanner,
                                                  door_reader, run_camera)

if TYPE_CHECKING:
    from storeedge.firmware.common.liveconfig import LiveConfig

log = logging.getLogger(__name__)


def service_sink(svc: EventSink):
    """An audit sink that puts each chained record into the event sink (the service's
    outbox) and logs it at info level: grants, denials, alarms and lockouts reach the
    journal."""
    def sink(rec):
        log.info("%s", audit_line(rec.type, rec.body))
        return svc.emit(event_from_body(rec.type, rec.body), ts=rec.t)
    return sink


AUDIT_FIELDS = ("reason", "detail", "vendor", "po", "source", "cred_id", "alarm", "by")


def audit_line(etype: str, body: dict) -> str:
    """One log line for an audit record: its type and the fields a person looks for."""
    parts = [f"{k}={body[k]}" for k in AUDIT_FIELDS if body.get(k) not in (None, "")]
    return f"{etype} " + (" ".join(parts) if parts else json.dumps(body, sort_keys=True)[:160])


def apply_revocations(ctl: DoorController, data: bytes, store: str) -> dict:
    """Verify and apply a signed revocation list; records ``door.revocations``."""
    rl = ctl.p.state.apply_revocations(data, store=store)
    ctl.record("door.revocations", {"serial": rl.serial, "creds": len(rl.creds),
                                    "keys": len(rl.keys)})
    return {"serial": rl.serial, "creds": len(rl.creds), "keys": len(rl.keys)}


class DoorApp:
    """One door device.

    Args:
        cfg: validated :class:`DoorConfig`.
        sink: where events go; takes the door's signed commands (the device service).
        clock: time source (default: the system clock).
        pin_factory: gpiozero pin factory (default: ``cfg.door.gpio_backend``).
        camera: an open ``drivers.camera`` Camera to read QR codes from (optional).
        relay: the lock relay, when built before the sink (see :func:`before_sink`).
        simulate: walk a simulated driver through after each grant (default: no
            ``pin_factory`` given and ``door.gpio_backend: mock``).
    """

    def __init__(self, cfg: DoorConfig, sink: EventSink, clock: Clock | None = None, *,
                 pin_factory=None, camera=None, relay=None, simulate: bool | None = None):
        self.cfg, self.sink, self.clock = cfg, sink, clock or SystemClock()
        factory = pin_factory or gpio.pin_factory(cfg.door.gpio_backend)
        opts = door_options(cfg)
        self.relay = relay or build_relay(opts.wiring.relay, pin_factory=factory)
        self.ctl = build_door(opts, self.clock, DoorSeams(
            sink=service_sink(sink), pin_factory=factory, probe=self._probe()),
            relay=self.relay)
        self._install_trust()
        self._register_commands()
        self.camera = camera if camera is not None else self._open_camera()
        self.scanner: SerialScanner | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.console = None
        self.simulated = (pin_factory is None and cfg.door.gpio_backend == "mock"
                          if simulate is None else simulate)
        if self.simulated:
            self._close_contact(factory)

    def _close_contact(self, factory) -> None:
        """Simulation: the contact reads *closed* from boot (a mock pin floats open)."""
        c = self.cfg.door.contact
        closed_low = c.pull_up != c.invert           # level at which the input means closed
        pin = factory.pin(c.pin)
        pin.drive_low() if closed_low else pin.drive_high()
        self.factory = factory

    def simulate_door(self, open_: bool) -> None:
        """Simulation: the (mock) door contact opens or closes, as a driver walking in does."""
        c = self.cfg.door.contact
        low = (c.pull_up != c.invert) != open_
        pin = self.factory.pin(c.pin)
        pin.drive_low() if low else pin.drive_high()

    def live_config(self, restart) -> "LiveConfig":
        """Live config: door timings, repeat window and log level apply at once; wiring,
        keys, ports and links need a restart (``restart``)."""
        from storeedge.firmware.common.liveconfig import LiveConfig, NeedsRestart, apply_log_level
        live_keys = ("unlock_s", "held_open_s", "rex_s", "jam_s", "rex_unlocks", "lockout_on",
                     "repeat_s")

        def apply_door(new) -> None:
            old = door_options(self.cfg)
            opts = door_options(new)
            if {k: v for k, v in vars(new.door).items() if k not in live_keys} != \
                    {k: v for k, v in vars(self.cfg.door).items() if k not in live_keys}:
                raise NeedsRestart("wiring, keys, paths, scanner or camera changed")
            with self.ctl._lock:
                self.ctl.p.logic.t = opts.timings
                self.ctl.repeat_s = opts.repeat_s
            self.cfg = new
            log.info("door timings applied live (unlock %.0f s, held open %.0f s; was %.0f/%.0f)",
                     opts.timings.unlock_s, opts.timings.held_open_s, old.timings.unlock_s,
                     old.timings.held_open_s)
        import dataclasses
        fixed = tuple(f"door.{f.name}" for f in dataclasses.fields(self.cfg.door)
                      if f.name not in live_keys)
        return LiveConfig(DoorConfig, self.cfg, {"door.": apply_door, "log.": apply_log_level},
                          restart=restart, fixed=fixed)

    def serve_config(self, config_path: str, restart) -> "LiveConfig":
        """The live config (the runner watches the file with it) and the technician console
        on ``door.console_port`` inside this process (``test relay`` and ``reset lockout``
        act on the running controller).  A console that cannot start is logged; the door
        runs without it."""
        live = self.live_config(restart)
        port = self.cfg.door.console_port
        if not port:
            return live
        from storeedge.firmware.console.embed import EmbeddedConsole
        from storeedge.firmware.console.exc import ConsoleError
        from storeedge.firmware.console.targets import DoorTarget
        target = DoorTarget(self.ctl, DoorConfig)
        target.live = live
        try:
            self.console = EmbeddedConsole.start(port_url=port, config_path=config_path,
                                                 service=self.sink, target=target,
                                                 clock=self.clock)
        except (ConsoleError, OSError) as exc:
            log.error("console on %s not started: %s (the door runs without it)", port, exc)
        return live

    def _probe(self):
        p = self.cfg.door.probe
        if p.rom is None:
            return None
        from storeedge.drivers.onewire import open_bus
        bus = open_bus(p.backend, root=p.root)

        def read() -> float | None:
            try:
                sample = bus.read(p.rom)
            except OSError as exc:           # probe unplugged: the check-in says null
                log.warning("cold-goods probe %s: %s", p.rom, exc)
                return None
            return round(sample.temp_c, 2) if sample.ok else None
        return read

    def _open_camera(self):
        cc = self.cfg.door.camera
        if not cc.backend:
            return None
        from storeedge.drivers.camera import open_camera
        kwargs = {"source": cc.source} if cc.source else {}
        if cc.backend == "replay":
            kwargs.update(realtime=True, clock=self.clock, loop=True)
        return open_camera(cc.backend, **kwargs)

    def _install_trust(self) -> None:
        state = self.ctl.p.state
        for line in self.cfg.door.trusted_keys:
            kid, public = parse_public_key_line(line)
            state.trust_key(kid, public, now=self.clock.time())
        path = self.cfg.door.revocations_path
        if path and Path(path).exists():
            try:
                apply_revocations(self.ctl, Path(path).read_bytes(), self.cfg.device.store)
            except RevocationListError as exc:
                log.info("revocation list %s not applied: %s", path, exc)

    def _register_commands(self) -> None:
        ctl, store = self.ctl, self.cfg.device.store

        def reset(cmd: Command) -> dict:
            return asdict(ctl.reset_lockout(cmd.by, str(cmd.args.get("note", ""))[:200]))

        def revocations(cmd: Command) -> dict:
            return apply_revocations(ctl, str(cmd.args["list"]).encode(), store)

        self.sink.on_command("reset_lockout", reset)
        def keys(cmd: Command) -> dict:
            ann = ctl.p.state.apply_keyset(str(cmd.args["keyset"]).encode(), store=store,
                                           now=self.clock.time())
            return {"serial": ann.serial, "added": sorted(ann.keys),
                    "trusted": ctl.p.state.trusted_kids()}

        self.sink.on_command("revocations", revocations)
        self.sink.on_command("keys", keys)
        def status(cmd: Command) -> dict:
            sc = self.scanner
            return dict(asdict(ctl.status()),
                        scanner_error=str(sc.error) if sc is not None and sc.error else None)

        self.sink.on_command("door_status", status)

    def start(self) -> None:
        """Start the QR sources and the timer loop (returns at once; the runner starts the
        event service)."""
        sc = self.cfg.door.scanner
        if sc.url:
            from storeedge.drivers.serial import open_port
            parser = ScanLineParser(lambda ln: self.ctl.present(ln.text, "serial"))
            reopen = lambda: open_port(sc.url, baudrate=sc.baudrate)      # noqa: E731
            self.scanner = SerialScanner(reopen(), parser, reopen=reopen)
            self.scanner.start()
        if self.camera is not None:
            cc = self.cfg.door.camera
            reader = door_reader(max_candidates=cc.max_candidates,
                                 full_frame_every=cc.full_frame_every)
            cam = CameraScanner(reader,
                                lambda text: self.ctl.present(text, "camera"))
            self._spawn(lambda: run_camera(self.camera, cam, self._stop), "door-camera")
        self._spawn(self._loop, "door-timers")
        if self.simulated:
            self._spawn(self._walk_through, "door-sim")

    SIM_OPEN_AFTER_S, SIM_OPEN_FOR_S = 1.0, 3.0

    def _walk_through(self) -> None:
        """Simulation: after each release of the lock the simulated driver opens the door
        (1 s later) and closes it behind them (3 s later): the contact follows that door."""
        was = False
        while not self._stop.wait(0.05):
            now = self.relay.unlocked
            if now and not was and not self._stop.wait(self.SIM_OPEN_AFTER_S):
                self.simulate_door(True)
                self._stop.wait(self.SIM_OPEN_FOR_S)
                self.simulate_door(False)
            was = now

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _loop(self) -> None:
        tick = self.cfg.door.tick_ms / 1000.0
        while not self._stop.wait(tick):
            self.ctl.tick()
            self.sink.heartbeat()

    def run(self, stop: threading.Event) -> None:
        """Start, block until ``stop`` is set, then stop."""
        self.start()
        stop.wait()
        self.stop()

    def stop(self) -> None:
        """Stop sources and loops, leave the relay locked (the runner then closes the
        service)."""
        self._stop.set()
        if self.console is not None:
            self.console.stop()
        if self.scanner is not None:
            self.scanner.stop()
        for t in self._threads:
            t.join(2.0)
        if self.camera is not None:
            self.camera.close()
        self.ctl.close()
        self.relay.close()
        self.ctl.p.state.close()


def before_sink(cfg: DoorConfig, clock, *, pin_factory=None, **parts) -> dict:
    """The lock relay, built (locked) before the runner opens the outbox: at boot nothing
    may come before the lock.  Returns the parts for :func:`build`."""
    if pin_factory is None:             # the config's pins (mock: the simulated door)
        parts.setdefault("simulate", cfg.door.gpio_backend == "mock")
        pin_factory = gpio.pin_factory(cfg.door.gpio_backend)
    relay = parts.get("relay") or build_relay(door_options(cfg).wiring.relay,
                                              pin_factory=pin_factory)
    return {**parts, "pin_factory": pin_factory, "relay": relay}


def build(cfg: DoorConfig, sink: EventSink, clock, **parts) -> DoorApp:
    """The door from its config (``AppSpec.build``; ``parts``: pin_factory, camera, relay)."""
    return DoorApp(cfg, sink, clock, **parts)
