"""systemd notifications (READY=1, WATCHDOG=1) without a libsystemd dependency."""
from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> bool:
    """Send ``state`` to ``$NOTIFY_SOCKET``; False when not supervised by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError:
            return False
    return True


def watchdog_interval_s() -> float | None:
    """Half of systemd's ``WatchdogSec`` (how often to ping), or None when not set."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    return int(usec) / 2e6
