"""The gateway app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="gateway", package=__package__, title="Gateway",
    summary="in-store event relay (also: gateway status)",
    config=".config:GatewayConfig", build=".relay:build",
    events=None, demo=None, in_store=False,
)
