"""Run the console inside a device app's process (the recommended deployment).

Inside the app the console uses the app's own DeviceService (one outbox, one ``seq`` per
device) and the app's own hardware objects through a thin adapter, so ``test relay``,
``ack`` and ``reset lockout`` act on the running app.  Example for the door app::

    from storeedge.firmware.console.embed import EmbeddedConsole
    from storeedge.firmware.console.targets import DoorTarget

    console = EmbeddedConsole.start(
        port_url="/dev/ttyGS0", config_path=args.config, service=app.svc,
        target=DoorTarget(app.ctl, DoorConfig), clock=app.clock)
    ...
    console.stop()
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from storeedge.drivers.clock import Clock
from storeedge.firmware.console.commands import EventService
from storeedge.firmware.console.console import ConsoleParts, refuse_self_echoing, serve_port
from storeedge.firmware.console.secret import read_logins
from storeedge.firmware.console.session import SessionSettings
from storeedge.firmware.console.targets import Target


@dataclass
class EmbeddedConsole:
    """A console thread serving one serial port."""

    thread: threading.Thread
    stop_event: threading.Event

    @classmethod
    def start(cls, *, port_url: str, config_path: str, service: EventService, target: Target,
              clock: Clock, secret_file: str | None = None) -> "EmbeddedConsole":
        """Start serving ``port_url`` in a daemon thread.

        The prompt shows the service's device id.  ``secret_file`` defaults to
        ``console.secret`` next to the config; it is read now, so a
        missing or malformed file raises here (SecretError), not later in the thread.
        """
        refuse_self_echoing(port_url)
        path = secret_file or os.path.join(os.path.dirname(os.path.abspath(config_path)),
                                           "console.secret")
        parts = ConsoleParts(config_path, target, service, clock, read_logins(path),
                             port_url)
        stop = threading.Event()
        name = os.path.basename(port_url) or "console"
        identity = getattr(service, "identity", None)
        prompt = getattr(identity, "dev", None) or name
        thread = threading.Thread(target=serve_port, args=(parts, stop), daemon=True,
                                  kwargs={"settings": SessionSettings(prompt_name=prompt)},
                                  name=f"console-{name}")
        thread.start()
        return cls(thread, stop)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to end and wait up to ``timeout_s`` seconds."""
        self.stop_event.set()
        self.thread.join(timeout_s)
