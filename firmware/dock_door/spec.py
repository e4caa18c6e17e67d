"""The dock door app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="dock_door",
    title="Dock door",
    summary="dock door QR controller (also: dock_door issue ...)",
    main="storeedge.firmware.dock_door.main",
    config="storeedge.firmware.dock_door.config:DoorConfig",
    events="storeedge.firmware.dock_door.events",
    demo="storeedge.firmware.dock_door.demo",
    hardware_section="door",
    aliases=("door", "dock-door"),
    build="storeedge.firmware.dock_door.app:build",
)
