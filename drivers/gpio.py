"""GPIO seam: gpiozero with a pin factory chosen by name.

``STOREEDGE_GPIO`` (or the ``backend=`` argument) names the pin factory: ``lgpio`` on a Pi
(imported lazily, only there), ``mock`` for gpiozero's :class:`~gpiozero.pins.mock.MockFactory`
(laptops, CI, the demo).  A real backend that fails to load raises :class:`BackendUnavailable`
saying why; it never falls back to mock silently.

Example::

    factory = pin_factory("mock")
    relay = gpiozero.DigitalOutputDevice(17, pin_factory=factory, initial_value=False)
    factory.pin(17).state        # what the mock pin is driven to
"""
from __future__ import annotations

import logging
import os
import threading

from storeedge.drivers.exc import BackendUnavailable, UnknownBackend

GPIO_ENV = "STOREEDGE_GPIO"
BACKENDS = ("lgpio", "rpigpio", "native", "mock")
_factories: dict[str, object] = {}
_lock = threading.Lock()
log = logging.getLogger("storeedge.gpio")


def backend_name(backend: str | None = None) -> str:
    """The backend to use: the argument, else ``$STOREEDGE_GPIO``, else ``lgpio``."""
    name = (backend or os.environ.get(GPIO_ENV) or "lgpio").strip().lower()
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown GPIO backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def _make_factory(name: str):
    try:
        if name == "mock":
            from gpiozero.pins.mock import MockFactory
            return MockFactory()
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory
            return LGPIOFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory
            return RPiGPIOFactory()
        from gpiozero.pins.native import NativeFactory
        return NativeFactory()
    except Exception as exc:  # ImportError, or the library failing to open /dev/gpiochip*
        raise BackendUnavailable(f"GPIO backend {name!r} failed to load: {exc}") from exc


def pin_factory(backend: str | None = None):
    """The process-wide gpiozero pin factory for ``backend`` (created once, then shared)."""
    name = backend_name(backend)
    with _lock:
        if name not in _factories:
            _factories[name] = _make_factory(name)
            if name == "mock" and not backend:
                log.warning("GPIO backend 'mock' from $%s: simulated pins, nothing real is "
                            "driven or read", GPIO_ENV)
        return _factories[name]


def new_mock_factory():
    """A fresh, private :class:`MockFactory` (tests that must not share pin state)."""
    from gpiozero.pins.mock import MockFactory
    return MockFactory()
