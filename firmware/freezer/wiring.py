"""Wires the freezer monitor from its config: the drivers a FreezerApp receives (1-Wire bus,
door contacts), its live config and embedded console; :func:`build` is ``AppSpec.build``.

The simulated bus puts one cabinet model per unit on a SimulatedBus (frozen units at -20 degC,
chilled at +3 degC) so ``onewire.backend: sim`` runs the whole app on a laptop.
"""
from __future__ import annotations

import datetime as _dt
import logging

import threading

from storeedge.drivers.onewire import open_bus
from storeedge.drivers.onewire.sim import FreezerPhysics, SimulatedBus, ThermalModel
from storeedge.firmware.common.liveconfig import LiveConfig, apply_log_level
from storeedge.firmware.freezer.app import FreezerApp
from storeedge.firmware.freezer.config import (FreezerConfig, FreezerSection, build_rules,
                                               storage_of)
from storeedge.firmware.freezer.rules import FreezerRules, parse_hhmm

log = logging.getLogger(__name__)
SETPOINT_C = {"frozen": -20.0, "chilled": 3.0}


def make_bus(fz: FreezerSection, rules: FreezerRules, clock):
    """The bus named by ``freezer.onewire`` (a populated simulated bus for ``sim``)."""
    ow = fz.onewire
    bus = open_bus(ow.backend, root=ow.root, source=ow.source, clock=clock)
    if isinstance(bus, SimulatedBus):
        for unit in rules.units.values():
            model = cabinet_model(unit.kind, unit.suppression.defrost_starts, rules, clock)
            for pname in unit.probes:
                bus.add_probe(rules.probes[pname].rom, model)
        log.warning("1-Wire backend 'sim': readings are SIMULATED (%s)", bus.root)
    return bus


def cabinet_model(kind: str, defrost_local: tuple[str, ...], rules: FreezerRules, clock,
                  **physics) -> ThermalModel:
    """A thermal model of a ``kind`` cabinet whose heater follows the unit's defrost times."""
    now = clock.time()
    offset = _dt.datetime.fromtimestamp(now, rules.tz).utcoffset().total_seconds()
    starts = []
    for hhmm in defrost_local:
        h, m = parse_hhmm(hhmm)
        utc_min = int((h * 60 + m - offset / 60) % 1440)
        starts.append(f"{utc_min // 60:02d}:{utc_min % 60:02d}")
    ph = FreezerPhysics(setpoint_c=SETPOINT_C[kind], defrost_starts_utc=tuple(starts),
                        **physics)
    return ThermalModel(ph, now)


def door_inputs(fz: FreezerSection, pin_factory=None) -> dict:
    """Per unit with a door pin, a callable returning True while the door is open.

    Uses gpiozero's DigitalInputDevice on the pin factory from ``storeedge.drivers.gpio``
    (``STOREEDGE_GPIO=mock`` on a laptop), pulled up: a closed reed contact pulls it low.
    """
    doors = {}
    for name, unit in fz.units.items():
        pin = unit.door.pin
        if pin is None:
            continue
        if pin_factory is None:
            from storeedge.drivers.gpio import pin_factory as default_factory
            pin_factory = default_factory()
        from gpiozero import DigitalInputDevice
        dev = DigitalInputDevice(pin, pull_up=True, pin_factory=pin_factory)
        high_is_open = unit.door.open_when == "high"
        doors[name] = (lambda d=dev, hi=high_is_open: (not d.is_active) if hi else d.is_active)
    return doors


FREEZER_RESTART_KEYS = ("device", "link", "outbox", "security", "freezer.onewire",
                        "freezer.haccp.path", "freezer.console_port", "freezer.timezone")


def freezer_live(app: FreezerApp, cfg, restart) -> LiveConfig:
    """Live config of a running freezer monitor: limits, delays, intervals, alarm policy,
    HACCP check times and batching apply at once; the rest restarts the app (``restart``)."""
    def apply_freezer(new) -> None:
        app.apply_rules(build_rules(new.freezer))
    return LiveConfig(FreezerConfig, cfg, {"freezer.": apply_freezer, "log.": apply_log_level},
                      restart=restart, fixed=FREEZER_RESTART_KEYS)


def start_console(port: str | None, config_path: str, svc, app: FreezerApp, live=None):
    """The technician console inside the app (issue 9's EmbeddedConsole), or None.

    A console that cannot start (no ``console.secret`` next to the config, port missing) is
    logged as an error: the freezer monitor keeps running without it.
    """
    if not port:
        return None
    from storeedge.firmware.console.embed import EmbeddedConsole
    from storeedge.firmware.console.exc import ConsoleError
    from storeedge.firmware.console.targets import FreezerTarget
    try:
        return EmbeddedConsole.start(port_url=port, config_path=config_path, service=svc,
                                     target=FreezerTarget(app, FreezerConfig, live),
                                     clock=app.clock)
    except (ConsoleError, OSError) as exc:
        log.error("console on %s not started: %s (the monitor runs without it)", port, exc)
        return None


class FreezerDevice:
    """The freezer monitor as the runner runs it: the app, its bus and its console.

    Attributes:
        app: the :class:`FreezerApp` (the console and the demo talk to it).
        bus: the 1-Wire bus (closed when ``run`` returns: the simulated one removes its files).
        max_sleep_s: longest wait between two passes of the loop, seconds.
    """

    def __init__(self, app: FreezerApp, cfg: FreezerConfig, bus, max_sleep_s: float = 1.0):
        self.app, self.cfg, self.bus, self.max_sleep_s = app, cfg, bus, max_sleep_s
        self.console = None

    def serve_config(self, config_path: str, restart) -> LiveConfig:
        """The live config, and the embedded console on ``freezer.console_port`` (if set)."""
        live = freezer_live(self.app, self.cfg, restart)
        self.console = start_console(self.cfg.freezer.console_port, config_path,
                                     self.app.sink, self.app, live)
        return live

    def run(self, stop: threading.Event) -> None:
        """Monitor until ``stop`` is set, then stop the console and close the bus."""
        try:
            self.app.run(stop, self.max_sleep_s)
        finally:
            if self.console is not None:
                self.console.stop()
            if hasattr(self.bus, "close"):      # the simulated bus removes its temp folder
                self.bus.close()


def build(cfg: FreezerConfig, sink, clock, *, bus=None, doors: dict | None = None,
          max_sleep_s: float = 1.0) -> FreezerDevice:
    """The freezer monitor from its config (``AppSpec.build``): the bus named by
    ``freezer.onewire`` (or ``bus``), door contacts (or ``doors``), the ``ack`` command."""
    rules = build_rules(cfg.freezer)
    bus = bus if bus is not None else make_bus(cfg.freezer, rules, clock)
    app = FreezerApp(rules, bus, sink, clock, storage_of(cfg.freezer),
                     doors=door_inputs(cfg.freezer) if doors is None else doors)
    app.register_commands(sink)
    return FreezerDevice(app, cfg, bus, max_sleep_s)
