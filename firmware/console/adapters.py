"""Choosing the device adapter and config class for a device kind.

Each app's config class is ``storeedge.firmware.<package>.config.<Class>`` (see CONFIG_CLASSES);
until an app provides it, the common ``DeviceConfig`` is used, so a config with app sections is
refused at start with the strict validation's message (naming the unknown key), never accepted
half-checked.
"""
from __future__ import annotations

import importlib

from storeedge.firmware.common.settings import DeviceConfig
from storeedge.firmware.console.targets import SimulatedTarget, StandaloneTarget, Target

CONFIG_CLASSES = {
    "freezer": ("storeedge.firmware.freezer.config", "FreezerConfig"),
    "dock_door": ("storeedge.firmware.dock_door.config", "DoorConfig"),
    "checkout": ("storeedge.firmware.checkout.config", "CheckoutConfig"),
    "gateway": ("storeedge.firmware.gateway.config", "GatewayConfig"),
}


def config_class_for(kind: str) -> type:
    """The app's config class for ``kind`` (``DeviceConfig`` when the app has none yet)."""
    where = CONFIG_CLASSES.get(kind)
    if where is None:
        return DeviceConfig
    module_name, name = where
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return DeviceConfig
    return getattr(module, name, DeviceConfig)


def make_target(kind: str, *, simulate: bool = False, config_path: str | None = None) -> Target:
    """The adapter for a console started on its own (``storeedge console``).

    ``simulate`` gives simulated hardware on a MockFactory, on the pins of the config at
    ``config_path`` (a door's relay and contact pins).  Otherwise hardware commands are
    refused with the reason (the app owns the hardware); an app that embeds the console passes
    its own adapter (DoorTarget, FreezerTarget, CheckoutTarget) to :mod:`.embed` instead.
    """
    cls = config_class_for(kind)
    if simulate:
        from storeedge.drivers.gpio import new_mock_factory
        from storeedge.firmware.common.config import load_config
        from storeedge.firmware.console.targets import sim_rig_for
        rig = sim_rig_for(load_config(config_path, cls)) if config_path else None
        return SimulatedTarget(kind, cls, new_mock_factory(), rig=rig)
    return StandaloneTarget(kind, cls)
