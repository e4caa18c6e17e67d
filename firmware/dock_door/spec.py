"""The dock door app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="dock_door", package=__package__, title="Dock door",
    summary="dock door QR controller (also: dock_door issue ...)",
    config=".config:DoorConfig", build=".app:build",
    hardware_section="door", aliases=("door", "dock-door"),
)
