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
* ANSI escape sequences (F-keys...) are swallowed instead of echoed as garbage;
* Up/Down arrows (and Ctrl-P/Ctrl-N) walk the history of entered lines (not passwords);
* with a ``completer`` and echo on: Tab completes the word being typed (or lists the
  choices), ``?`` lists what may come next, like a Junos/IOS CLI (with echo off, for a
  password, ``?`` is an ordinary character);
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
from typing import Callable, Protocol

BS, DEL, CR, LF, ESC = 0x08, 0x7F, 0x0D, 0x0A, 0x1B
CTRL_C, CTRL_D, CTRL_U, CTRL_W, BEL = 0x03, 0x04, 0x15, 0x17, 0x07
TAB, QMARK, CTRL_P, CTRL_N = 0x09, 0x3F, 0x10, 0x0E
MAX_LINE = 256
MAX_HISTORY = 50


class Completer(Protocol):
    """What the editor asks for Tab and ``?`` (see :mod:`.complete`)."""

    def complete(self, line: str) -> list[str]:
        """Full words that may replace the last (partial) word of ``line``."""

    def describe(self, line: str) -> list[str]:
        """Lines explaining what may follow ``line`` (for ``?``)."""


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

    def __init__(self, write: Callable[[bytes], object], *, max_len: int = MAX_LINE,
                 completer: Completer | None = None):
        self._write = write
        self.max_len = max_len
        self.completer = completer
        self.prompt = b""          # redrawn after a Tab/? listing
        self.history: list[str] = []
        self._hist_pos = 0
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
        if b in (TAB, QMARK) and self.echo and self.completer is not None:
            self._assist(b)
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
            if b in (0x41, 0x42):               # ESC [ A = up, ESC [ B = down
                self._recall(-1 if b == 0x41 else 1)

    def _recall(self, step: int) -> None:
        """Replace the line with the previous (step -1) or next (+1) history entry."""
        if not self.echo or not self.history:
            return
        pos = max(0, min(len(self.history), self._hist_pos + step))
        if pos == self._hist_pos:
            return
        self._hist_pos = pos
        text = self.history[pos] if pos < len(self.history) else ""
        self._erase(len(self._buf))
        self._buf[:] = text.encode("ascii")
        self._write(bytes(self._buf))

    def _assist(self, b: int) -> None:
        """Tab: complete the last word (or list choices); ``?``: list what may follow."""
        text = self.pending
        if b == QMARK:
            self._listing(self.completer.describe(text))
            return
        words = self.completer.complete(text)
        partial = text.rsplit(" ", 1)[-1] if not text.endswith(" ") else ""
        common = _common_prefix(words)
        if len(common) > len(partial):
            add = common[len(partial):] + (" " if len(words) == 1 else "")
            for ch in add.encode("ascii", "replace"):
                self._insert(ch)
        elif len(words) > 1:
            self._listing(["  " + "  ".join(words)])
        else:
            self._write(bytes([BEL]))

    def _listing(self, lines: list[str]) -> None:
        out = "\r\n" + "".join(line + "\r\n" for line in lines)
        self._write(out.encode("ascii", "replace") + self.prompt + bytes(self._buf))

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
        elif b in (CTRL_P, CTRL_N):
            self._recall(-1 if b == CTRL_P else 1)
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
        if self.echo and text.strip() and not (bad or overflow):
            if not self.history or self.history[-1] != text:
                self.history = (self.history + [text])[-MAX_HISTORY:]
        self._hist_pos = len(self.history)
        self.reset(echo=self.echo)
        if overflow:
            return LineItem(LineKind.REJECTED,
                            f"line too long (more than {self.max_len} characters); discarded")
        if bad:
            return LineItem(LineKind.REJECTED,
                            f"line contained {bad} non-printable or non-ASCII byte(s); discarded")
        return LineItem(LineKind.LINE, text)


def _common_prefix(words: list[str]) -> str:
    """The longest prefix all ``words`` share ("" for none)."""
    if not words:
        return ""
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]
