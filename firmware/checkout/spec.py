"""The checkout app, declared once (see :mod:`storeedge.apps`)."""
from storeedge.apps import AppSpec

SPEC = AppSpec(
    kind="checkout",
    title="Checkout lane",
    summary="self-checkout lane camera",
    main="storeedge.firmware.checkout.main",
    config="storeedge.firmware.checkout.config:CheckoutConfig",
    events="storeedge.firmware.checkout.events",
    demo="storeedge.firmware.checkout.demo",
    hardware_section="checkout",
    build="storeedge.firmware.checkout.app:build",
)
