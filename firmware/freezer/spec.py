"""The freezer app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="freezer",
    title="Freezer monitor",
    summary="freezer temperature monitor",
    main="storeedge.firmware.freezer.main",
    config="storeedge.firmware.freezer.config:FreezerConfig",
    events="storeedge.firmware.freezer.events",
    demo="storeedge.firmware.freezer.demo",
    hardware_section="freezer",
    build="storeedge.firmware.freezer.wiring:build",
)
