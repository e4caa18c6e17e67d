"""Scanner serial-tap parsing: bytes in, POS events (or rejections) out; no I/O here.

A scanner in keyboard-wedge/serial mode sends the code followed by CR (or LF/CRLF),
optionally preceded by its AIM symbology identifier (``]E0`` EAN-13/UPC-A, ``]E4`` EAN-8,
``]C1`` GS1-128, ``]e0`` GS1 DataBar, ``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR...). Lines that
are not plausible codes -- control bytes from line noise, too long, empty after the prefix,
a numeric EAN/UPC with a wrong check digit -- are rejected with a reason and counted.

    >>> p = AimLineParser()
    >>> [e.code for e in p.feed(b"]E04006381333931\\r0400638133393", t=1.0)]
    ['4006381333931']
"""
from __future__ import annotations

import re
from typing import NamedTuple

MAX_LINE = 128
GS = 0x1D

# AIM symbology identifier -> format name understood by storeedge.native.gs1.normalize
AIM_FORMATS = {
    "E0": "EAN-13", "E4": "EAN-8", "E3": "EAN-13", "C0": "Code 128", "C1": "Code 128",
    "e0": "DataBar", "d1": "Data Matrix", "d2": "Data Matrix", "Q1": "QR Code", "Q3": "QR Code",
    "A0": "Code 39", "I0": "ITF", "I1": "ITF", "F0": "Codabar",
}
_AIM = re.compile(r"^\]([A-Za-z])([0-9A-Za-z])")


class PosEvent(NamedTuple):
    """A POS event: kind "scan", "txn_start" or "txn_end"; ``t`` s on the monotonic clock
    when it arrived; ``code`` without prefix; ``symbology`` the AIM id ("E0") or "";
    ``format`` a format name or None; ``raw`` the line as received (escaped, printable);
    ``txn`` the POS transaction id when the feed knows it."""

    kind: str
    t: float
    code: str = ""
    symbology: str = ""
    format: str | None = None
    raw: str = ""
    txn: str = ""


class Rejected(NamedTuple):
    """A line that was not accepted: why, and the line escaped to at most 40 characters."""

    t: float
    reason: str
    sample: str


def escape(data: bytes, limit: int = 40) -> str:
    """Printable, log-safe rendering of ``data`` (non-printables as \\xNN), cut at ``limit``."""
    text = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_digit_ok(code: str) -> bool:
    total = sum(int(c) * (1 if i % 2 else 3) for i, c in enumerate(reversed(code[:-1])))
    return (10 - total % 10) % 10 == int(code[-1])


def parse_line(line: bytes, t: float) -> PosEvent | Rejected:
    """Parse one line (without its terminator)."""
    if any((b < 0x20 and b != GS) or b >= 0x7F for b in line):
        return Rejected(t, "non-printable bytes", escape(line))
    text = line.decode("ascii")
    sym, fmt = "", None
    m = _AIM.match(text)
    if m:
        sym = m.group(1) + m.group(2)
        fmt = AIM_FORMATS.get(sym)
        text = text[3:]
    text = text.strip(" \t\x1d")          # padding and a leading FNC1 (GS) carry nothing
    if not text:
        return Rejected(t, "empty code", escape(line))
    if text.isdigit() and len(text) in (8, 12, 13, 14) and fmt in (None, "EAN-13", "EAN-8"):
        if not _check_digit_ok(text):
            return Rejected(t, "bad check digit", escape(line))
    elif text.isdigit() and fmt in ("EAN-13", "EAN-8"):
        return Rejected(t, f"wrong length for {fmt}", escape(line))
    return PosEvent("scan", t, text, sym, fmt, escape(line, MAX_LINE))


class AimLineParser:
    """Bytes-fed line assembler (pyserial ``LineReader`` style): ``feed(data, t)`` returns
    the events and rejections completed by ``data``. Counters: ``accepted``, ``rejected``."""

    def __init__(self, max_line: int = MAX_LINE):
        self.max_line = max_line
        self._buf = bytearray()
        self._overflow = False
        self.accepted = 0
        self.rejected = 0

    def feed(self, data: bytes, t: float) -> list[PosEvent | Rejected]:
        out: list[PosEvent | Rejected] = []
        for b in data:
            if b in (0x0D, 0x0A):
                out.extend(self._end_line(t))
                continue
            if self._overflow:
                continue
            self._buf.append(b)
            if len(self._buf) > self.max_line:
                out.append(Rejected(t, f"line longer than {self.max_line} bytes",
                                    escape(bytes(self._buf))))
                self.rejected += 1
                self._buf.clear()
                self._overflow = True
        return out

    def _end_line(self, t: float) -> list[PosEvent | Rejected]:
        if self._overflow:
            self._overflow = False
            return []
        if not self._buf:
            return []                     # CRLF, or blank keep-alive lines
        result = parse_line(bytes(self._buf), t)
        self._buf.clear()
        if isinstance(result, Rejected):
            self.rejected += 1
        else:
            self.accepted += 1
        return [result]
