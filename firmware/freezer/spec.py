"""The freezer app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="freezer", package=__package__, title="Freezer monitor",
    summary="freezer temperature monitor",
    config=".config:FreezerConfig", build=".wiring:build",
    hardware_section="freezer",
)
