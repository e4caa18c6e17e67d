"""QR sources: a serial QR scanner (line-terminated text) and camera frames (barcode reader).

Byte parsing lives in :class:`ScanLineParser`, fed with ``data_received(bytes)`` like a
pyserial ``threaded.Protocol``; the I/O thread in :class:`SerialScanner` only reads bytes.

Example::

    parser = ScanLineParser(lambda line: ctl.present(line.text, "serial"))
    parser.data_received(b"SED1.AQAB...\\r\\n")

    scanner = SerialScanner(open_port("/dev/ttyACM0", baudrate=9600), parser)
    scanner.start()                      # reads in a thread until stop()

    cam = CameraScanner(BarcodeReader(formats="QRCode"), lambda text: ctl.present(text, "camera"))
    cam.handle_frame(frame.main, t=frame.t)
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

DEFAULT_MAX_LINE = 1024        # bytes; a QR credential is ~200


@dataclass(frozen=True)
class ScanLine:
    """One scanned line: ``text`` (decoded, stripped) and ``overflow`` (the line was longer
    than the parser keeps; ``text`` is its beginning)."""

    text: str
    overflow: bool = False


class ScanLineParser:
    """Splits a scanner's byte stream into lines (CR, LF or CRLF terminated).

    Args:
        on_line: called with a :class:`ScanLine` per non-empty line.
        max_line: bytes kept per line; the rest of an over-long line is dropped and the line
            is delivered with ``overflow=True`` (so the door can deny it as malformed).
    """

    def __init__(self, on_line: Callable[[ScanLine], None], *, max_line: int = DEFAULT_MAX_LINE):
        self.on_line, self.max_line = on_line, max_line
        self._buf = bytearray()
        self._overflow = False
        self.lines = 0
        self.overflows = 0

    def data_received(self, data: bytes) -> None:
        """Feed raw bytes (any chunking)."""
        start = 0
        for i, b in enumerate(data):
            if b in (0x0A, 0x0D):
                self._add(data[start:i])
                self._end_line()
                start = i + 1
        self._add(data[start:])

    def _add(self, chunk: bytes) -> None:
        room = self.max_line - len(self._buf)
        if len(chunk) > room:
            self._overflow = True
            chunk = chunk[:max(0, room)]
        self._buf += chunk

    def _end_line(self) -> None:
        raw, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        text = raw.decode("utf-8", errors="replace").strip()
        if not text and not overflow:
            return                      # CRLF pair or blank line
        self.lines += 1
        self.overflows += overflow
        self.on_line(ScanLine(text, overflow))


class SerialScanner:
    """Reads a serial QR scanner in a thread and feeds a :class:`ScanLineParser`; reopens
    the port after an error (USB scanner unplugged and plugged back).

    Args:
        port: an open pyserial port (from :func:`storeedge.drivers.serial.open_port`) with a
            read timeout, so :meth:`stop` is noticed within that time.
        parser: receives the bytes.
        reopen: ``reopen() -> port`` called after a read error (None = give up).
        retry_s: seconds between reopen attempts.
    """

    def __init__(self, port, parser: ScanLineParser, *, reopen=None, retry_s: float = 2.0):
        self.port, self.parser = port, parser
        self.reopen, self.retry_s = reopen, retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None
        self.reconnects = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="door-serial-scanner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.port is None:
                    self.port = self.reopen()
                    self.reconnects += 1
                    self.error = None
                    log.info("serial scanner reopened")
                data = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
                if data:
                    self.parser.data_received(data)
            except Exception as exc:    # unplugged / reopen failed: recorded, retried
                self._failed(exc)
                if self.reopen is None:
                    return
                self._stop.wait(self.retry_s)

    def _failed(self, exc: Exception) -> None:
        if self.error is None:
            log.error("serial scanner: %s", exc)
        self.error = exc
        if self.port is not None:
            try:
                self.port.close()
            except Exception:
                pass
            self.port = None

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.port is not None:
            self.port.close()


class CameraScanner:
    """Finds QR codes in camera frames with the shared barcode reader.

    Args:
        reader: a :class:`storeedge.native.barcode.BarcodeReader` (formats including QRCode).
        on_text: called with each QR text found in a frame.
    """

    QR_FORMATS = ("QR Code", "QRCode", "Micro QR Code", "MicroQRCode")

    def __init__(self, reader, on_text: Callable[[str], object], *, prefix: str = "SED"):
        self.reader, self.on_text, self.prefix = reader, on_text, prefix
        self.frames = 0
        self.ignored = 0

    def handle_frame(self, gray, t: float | None = None) -> list[str]:
        """Decode one grey (H, W) uint8 frame; returns the QR texts passed on.

        QR codes that do not start with ``prefix`` (a poster or a parcel label in view) are
        counted in :attr:`ignored`, not denied: they must not flood events or trip the
        wrong-code throttle.  A serial scanner, aimed on purpose, passes everything on.
        """
        self.frames += 1
        texts = []
        for bc in self.reader.read(gray, t=t):
            if bc.format not in self.QR_FORMATS:
                continue
            if not bc.text.startswith(self.prefix):
                self.ignored += 1
                continue
            texts.append(bc.text)
        for text in texts:
            self.on_text(text)
        return texts


def door_reader(*, max_candidates: int = 0, full_frame_every: int = 1):
    """The shared :class:`~storeedge.native.barcode.BarcodeReader` set up for door QR codes.

    Measured (bench/barcode_photos.py --formats QRCode, real QR photos in 1280x720 frames):
    the localiser now reads as many QR codes as zxing-cpp's QR-only full-frame pass (67/67)
    but takes 2.6x its time (~3 ms per frame), so the door runs that full-frame pass on every
    frame and skips the localiser by default (docs/barcode.md).
    """
    from storeedge.native.barcode import BarcodeReader
    return BarcodeReader(formats="QRCode", max_candidates=max_candidates,
                         fallback_period=full_frame_every)


def run_camera(camera, scanner: CameraScanner, stop: threading.Event) -> None:
    """Feed ``camera.capture()`` frames (``.main`` luma) to ``scanner`` until ``stop``."""
    while not stop.is_set() and not camera.finished:
        frame = camera.capture(timeout_s=0.5)
        if frame is not None:
            scanner.handle_frame(frame.main, t=frame.t)
