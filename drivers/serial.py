"""Serial seam: pyserial ports addressed by URL.

Accepts device paths (``/dev/ttyGS0``, ``/dev/serial0``, ``/dev/ttyUSB0``) and pyserial URLs
(``loop://``, ``socket://host:port``, ``spy:///dev/ttyUSB0``, ``rfc2217://``).  A URL whose
handler fails to import is reported with the real cause, not as "protocol not known".
"""
from __future__ import annotations

import re

from storeedge.drivers.exc import BackendUnavailable, DeviceIOError

_SCHEME = re.compile(r"^([a-z0-9+]+)://", re.IGNORECASE)


def open_port(url: str, *, baudrate: int = 115200, timeout: float | None = 0.1):
    """Open ``url`` and return a pyserial port object.

    Args:
        url: device path or pyserial URL.
        baudrate: bits per second (ignored by ``loop://`` and ``socket://``).
        timeout: read timeout in seconds (None blocks).
    """
    try:
        import serial
    except ImportError as exc:
        raise BackendUnavailable(f"pyserial is not installed: {exc}") from exc
    match = _SCHEME.match(url)
    if match:
        _check_handler(match.group(1).lower())
    try:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise DeviceIOError(f"cannot open serial port {url!r}: {exc}") from exc


def _check_handler(scheme: str) -> None:
    import importlib

    module = f"serial.urlhandler.protocol_{scheme}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise DeviceIOError(f"serial URL scheme {scheme!r} is not supported by pyserial") from exc
        raise BackendUnavailable(f"serial URL scheme {scheme!r} needs {exc.name}: {exc}") from exc
    except ImportError as exc:
        raise BackendUnavailable(f"serial URL handler {scheme!r} failed to load: {exc}") from exc
