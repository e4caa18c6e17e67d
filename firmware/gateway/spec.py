"""The gateway app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="gateway",
    title="Gateway",
    summary="in-store event relay (also: gateway status)",
    main="storeedge.firmware.gateway.main",
    config="storeedge.firmware.gateway.config:GatewayConfig",
    in_store=False,
    build="storeedge.firmware.gateway.relay:build",
)
