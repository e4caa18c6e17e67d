"""The checkout app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="checkout", package=__package__, title="Checkout lane",
    summary="self-checkout lane camera",
    config=".config:CheckoutConfig", build=".app:build",
    hardware_section="checkout",
)
