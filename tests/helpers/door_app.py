"""A :class:`DoorApp` on its own device service, built the way the runner builds it."""
from __future__ import annotations

from storeedge import apps
from storeedge.drivers.clock import SystemClock
from storeedge.firmware.common.runner import AppRunner


class DoorUnderTest:
    """The door app, its device service (``svc``) and the parts built first (the relay).

    ``start()`` starts the service then the door, ``stop()`` stops the door then closes the
    service (the runner's order); other attributes are the app's (``ctl``, ``relay`` ...).
    """

    def __init__(self, cfg, clock=None, pin_factory=None):
        parts = {} if pin_factory is None else {"pin_factory": pin_factory}
        self.runner = AppRunner(apps.app("dock_door"), cfg, clock or SystemClock(), parts)
        self.app = self.runner.build()
        self.svc = self.runner.sink

    def start(self) -> None:
        self.svc.start()
        self.app.start()

    def stop(self) -> None:
        self.app.stop()
        self.svc.close()

    def __getattr__(self, name):
        return getattr(self.app, name)
