"""Line editor for a dumb serial terminal, fed raw bytes (no TTY on the device side).

A :class:`LineEditor` is a protocol object in the style of pyserial's
``serial.threaded.Protocol``: the reader hands it whatever bytes arrived
(:meth:`LineEditor.feed`), it echoes through ``write`` and returns what the user finished:
a line, a cancelled line (Ctrl-C) or end-of-session (Ctrl-D).

What a technician at ``screen /dev/ttyUSB0 115200`` (or picocom/minicom) gets:

* printable ASCII is echoed (or hidden in password mode);
* Backspace (``0x08``) and DEL (``0x7f``, what most terminals send) erase one character;
* Ctrl-U erases the line, Ctrl-W the last word;
* Enter is CR, LF or CR LF (one line, not two);
* Ctrl-C cancels the line (``^C``), Ctrl-D ends the session (``^D``);
* ANSI escape sequences (arrow keys, F-keys) are swallowed instead of echoed as garbage;
* anything else (other control bytes, bytes >= 0x80) is not inserted; a line that contained
  such bytes, or grew past ``max_len`` characters, is discarded on Enter with a reason, so a
  mangled or truncated command is never run.

Example::

    ed = LineEditor(write=port.write)
    for item in ed.feed(port.read(64)):
        if item.kind is LineKind.LINE:
            run(item.text)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

BS, DEL, CR, LF, ESC = 0x08, 0x7F, 0x0D, 0x0A, 0x1B
CTRL_C, CTRL_D, CTRL_U, CTRL_W, BEL = 0x03, 0x04, 0x15, 0x17, 0x07
MAX_LINE = 256


class LineKind(enum.Enum):
    """What a finished input item is."""

    LINE = "line"          # Enter on a clean line: ``text`` holds it
    CANCEL = "cancel"      # Ctrl-C
    EOF = "eof"            # Ctrl-D
    REJECTED = "rejected"  # Enter on a line that was too long or held bad bytes: ``text`` = reason


@dataclass(frozen=True)
class LineItem:
    """One finished input item."""

    kind: LineKind
    text: str = ""


class _Esc(enum.Enum):
    NONE = 0
    START = 1     # got ESC
    CSI = 2       # got ESC [  or ESC O: wait for a final byte 0x40..0x7e


class LineEditor:
    """Turns raw terminal bytes into lines, echoing like a terminal's line discipline.

    Args:
        write: called with bytes to echo back to the terminal.
        max_len: longest accepted line, in characters.
    """

    def __init__(self, write: Callable[[bytes], object], *, max_len: int = MAX_LINE):
        self._write = write
        self.max_len = max_len
        self.echo = True
        self._buf = bytearray()
        self._bad = 0
        self._overflow = False
        self._esc = _Esc.NONE
        self._last_cr = False

    @property
    def pending(self) -> str:
        """The characters typed so far on the current line."""
        return self._buf.decode("ascii")

    def reset(self, *, echo: bool = True) -> None:
        """Drop the current line and set echo (False for password entry)."""
        self._buf.clear()
        self._bad = 0
        self._overflow = False
        self._esc = _Esc.NONE
        self.echo = echo

    def feed(self, data: bytes) -> list[LineItem]:
        """Process ``data`` (any bytes); return the items finished by it, in order."""
        items: list[LineItem] = []
        for byte in data:
            item = self._byte(byte)
            if item is not None:
                items.append(item)
        return items

    def _byte(self, b: int) -> LineItem | None:
        was_cr, self._last_cr = self._last_cr, b == CR
        if self._esc is not _Esc.NONE:
            self._escape(b)
            return None
        if b == LF and was_cr:
            return None
        if b in (CR, LF):
            return self._enter()
        if 0x20 <= b < 0x7F:
            self._insert(b)
            return None
        return self._control(b)

    def _escape(self, b: int) -> None:
        if self._esc is _Esc.START:
            self._esc = _Esc.CSI if b in (0x5B, 0x4F) else _Esc.NONE
        elif 0x40 <= b <= 0x7E:
            self._esc = _Esc.NONE

    def _control(self, b: int) -> LineItem | None:
        if b in (BS, DEL):
            self._erase(1)
        elif b == CTRL_U:
            self._erase(len(self._buf))
        elif b == CTRL_W:
            self._erase(self._word_len())
        elif b == CTRL_C:
            self._write(b"^C\r\n")
            self.reset(echo=self.echo)
            return LineItem(LineKind.CANCEL)
        elif b == CTRL_D:
            self._write(b"^D\r\n")
            self.reset(echo=self.echo)
            return LineItem(LineKind.EOF)
        elif b == ESC:
            self._esc = _Esc.START
        else:
            self._bad += 1
        return None

    def _insert(self, b: int) -> None:
        if len(self._buf) >= self.max_len:
            if not self._overflow:
                self._write(bytes([BEL]))
            self._overflow = True
            return
        self._buf.append(b)
        if self.echo:
            self._write(bytes([b]))

    def _erase(self, n: int) -> None:
        n = min(n, len(self._buf))
        if n == 0:
            return
        del self._buf[len(self._buf) - n:]
        if self.echo:
            self._write(b"\b \b" * n)

    def _word_len(self) -> int:
        text = self._buf.decode("ascii")
        stripped = text.rstrip(" ")
        cut = stripped.rfind(" ") + 1
        return len(text) - cut

    def _enter(self) -> LineItem:
        self._write(b"\r\n")
        text, bad, overflow = self.pending, self._bad, self._overflow
        self.reset(echo=self.echo)
        if overflow:
            return LineItem(LineKind.REJECTED,
                            f"line too long (more than {self.max_len} characters); discarded")
        if bad:
            return LineItem(LineKind.REJECTED,
                            f"line contained {bad} non-printable or non-ASCII byte(s); discarded")
        return LineItem(LineKind.LINE, text)
