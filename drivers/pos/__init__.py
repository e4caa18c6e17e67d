"""POS feed seam: what the point of sale says was scanned, and transaction start/end.

Feeds (``poll()`` -> list of :class:`PosEvent` / :class:`Rejected`):

* :class:`SerialPosFeed` -- a scanner's serial tap (pyserial URL; code + CR, with or without
  an AIM symbology prefix), parsed by the bytes-fed :class:`AimLineParser`;
* :class:`MqttPosFeed` -- JSON messages the POS publishes on a topic;
* :class:`ReplayPosFeed` -- a recorded scan log.

Self-test (used by the console's ``test scanner``): it asks the technician to scan a code,
or checks a loopback port when given one::

    >>> from storeedge.drivers.pos import scanner_self_test
    >>> port = open_port("loop://")
    >>> r = scanner_self_test(port, clock, inject=b"]E04006381333931\\r")
    >>> r.ok, r.code, r.symbology
    (True, '4006381333931', 'E0')
"""
from __future__ import annotations

from typing import NamedTuple

from storeedge.drivers.pos.exc import PosError, PosFeedIOError
from storeedge.drivers.pos.feeds import (MqttPosFeed, PosFeed, ReplayPosFeed, SerialPosFeed,
                                         parse_mqtt_payload)
from storeedge.drivers.pos.parser import (AIM_FORMATS, AimLineParser, PosEvent, Rejected,
                                          escape, parse_line)

__all__ = ["PosEvent", "Rejected", "AimLineParser", "parse_line", "escape", "AIM_FORMATS",
           "PosFeed", "SerialPosFeed", "MqttPosFeed", "ReplayPosFeed", "parse_mqtt_payload",
           "PosError", "PosFeedIOError", "scanner_self_test", "ScannerSelfTest"]


class ScannerSelfTest(NamedTuple):
    """Result of :func:`scanner_self_test`: the first line read within the timeout."""

    ok: bool
    code: str
    symbology: str
    reason: str


def scanner_self_test(port, clock, *, timeout_s: float = 10.0,
                      inject: bytes | None = None) -> ScannerSelfTest:
    """Read one line from an open serial ``port`` (write ``inject`` first, for loopback
    checks) and report what was scanned, or why nothing valid was."""
    if inject:
        port.write(inject)
    parser = AimLineParser()
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline:
        data = port.read(256)
        for item in parser.feed(data, clock.monotonic()) if data else []:
            if isinstance(item, Rejected):
                return ScannerSelfTest(False, "", "", f"rejected: {item.reason} ({item.sample})")
            return ScannerSelfTest(True, item.code, item.symbology, "")
        if not data and inject is not None:
            clock.sleep(0.01)
    return ScannerSelfTest(False, "", "", f"no scan within {timeout_s} s")
