"""Builds the drivers a FreezerApp receives, from its config (1-Wire bus, door contacts).

The simulated bus puts one cabinet model per unit on a SimulatedBus (frozen units at -20 degC,
chilled at +3 degC) so ``onewire.backend: sim`` runs the whole app on a laptop.
"""
from __future__ import annotations

import datetime as _dt
import logging

from storeedge.drivers.onewire import open_bus
from storeedge.drivers.onewire.sim import FreezerPhysics, SimulatedBus, ThermalModel
from storeedge.firmware.freezer.config import FreezerSection
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
