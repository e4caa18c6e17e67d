"""Choosing the device adapter and config class for a device kind.

Each app's config class is named by its ``spec.py`` (:mod:`storeedge.apps`); a kind no app
declares gets the common ``DeviceConfig``, so a config with app sections is refused at start
with the strict validation's message (naming the unknown key), never accepted half-checked.
"""
from __future__ import annotations

from storeedge import apps
from storeedge.exc import AppSpecError
from storeedge.settings import DeviceConfig
from storeedge.firmware.console.targets import SimulatedTarget, StandaloneTarget, Target

def config_class_for(kind: str) -> type:
    """The app's config class for ``kind`` (``DeviceConfig`` when no app declares ``kind``)."""
    try:
        spec = apps.app(kind)
    except AppSpecError:
        return DeviceConfig
    return spec.config_class()


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
        from storeedge.config import load_config
        from storeedge.firmware.console.targets import sim_rig_for
        rig = sim_rig_for(load_config(config_path, cls)) if config_path else None
        return SimulatedTarget(kind, cls, new_mock_factory(), rig=rig)
    return StandaloneTarget(kind, cls)
