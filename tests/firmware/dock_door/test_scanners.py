"""QR sources: the bytes-fed line parser, a real pyserial port (loop:// and a pty pair) and
camera frames through the shared barcode reader (zxing-cpp renders the QR)."""
from __future__ import annotations

import os
import time

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from storeedge.drivers.serial import open_port
from storeedge.qrimage import paste_into_frame, qr_gray
from storeedge.firmware.dock_door.scanner import (CameraScanner, ScanLine, ScanLineParser,
                                                  SerialScanner, door_reader)
from storeedge.firmware.dock_door.verify import Reason
from storeedge.native.barcode import BarcodeReader


def collect(**kw):
    lines: list[ScanLine] = []
    return ScanLineParser(lines.append, **kw), lines


def test_parser_terminators_and_chunking():
    p, lines = collect()
    for chunk in [b"SED1.ab", b"c\r", b"\nSECOND\n", b"\r\n\r\n", b"third\rfour", b"th\n"]:
        p.data_received(chunk)
    assert [ln.text for ln in lines] == ["SED1.abc", "SECOND", "third", "fourth"]
    assert not any(ln.overflow for ln in lines)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet="ABCxyz019-_.", min_size=1, max_size=40), max_size=6),
       cuts=st.lists(st.integers(0, 400), max_size=8), term=st.sampled_from([b"\r", b"\n",
                                                                             b"\r\n"]))
def test_parser_any_chunking_gives_same_lines(texts, cuts, term):
    stream = b"".join(t.encode() + term for t in texts)
    p, lines = collect()
    pos = 0
    for c in sorted(set(cuts)) + [len(stream)]:
        p.data_received(stream[pos:c])
        pos = max(pos, c)
    assert [ln.text for ln in lines] == texts


def test_parser_overflow_is_flagged_and_resyncs():
    p, lines = collect(max_line=16)
    p.data_received(b"X" * 40 + b"\nOK\n")
    assert lines == [ScanLine("X" * 16, True), ScanLine("OK", False)]
    assert p.overflows == 1


def test_parser_non_utf8_bytes_become_a_denial_not_an_error(rig):
    p = ScanLineParser(lambda ln: rig.ctl.present(ln.text, "serial"))
    p.data_received(b"SED1.\xff\xfe\x00junk\r\n")
    assert rig.last("door.denied").body["reason"] == "malformed"
    assert not rig.unlocked


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_serial_loop_url_end_to_end(rig):
    port = open_port("loop://", timeout=0.05)
    results = []
    parser = ScanLineParser(lambda ln: results.append(rig.ctl.present(ln.text, "serial")))
    scanner = SerialScanner(port, parser)
    scanner.start()
    try:
        port.write(rig.issue().encode() + b"\r\n")
        assert wait_for(lambda: results)
    finally:
        scanner.stop()
    assert results[0].granted and rig.unlocked
    assert rig.last("door.granted").body["source"] == "serial"


def test_serial_pty_scanner_like_a_usb_cdc_device(rig):
    master, slave = os.openpty()
    port = open_port(os.ttyname(slave), baudrate=9600, timeout=0.05)
    results = []
    scanner = SerialScanner(port, ScanLineParser(
        lambda ln: results.append(rig.ctl.present(ln.text, "serial"))))
    scanner.start()
    try:
        os.write(master, b"garbage-scan\r")
        text = rig.issue().encode()
        rig.clock.advance(1)
        for i in range(0, len(text), 7):                 # slow UART: small pieces
            os.write(master, text[i:i + 7])
        os.write(master, b"\r")
        assert wait_for(lambda: len(results) == 2)
    finally:
        scanner.stop()
        os.close(master)
        os.close(slave)
    assert results[0].reason == Reason.MALFORMED
    assert results[1].granted and rig.unlocked


def test_camera_frames_through_barcode_reader(rig):
    decisions = []
    cam = CameraScanner(door_reader(),
                        lambda text: decisions.append(rig.ctl.present(text, "camera")))
    empty = paste_into_frame(qr_gray("x", scale=1)[:1, :1])
    assert cam.handle_frame(empty) == []
    text = rig.issue()
    frame = paste_into_frame(qr_gray(text, scale=4), at=(220, 120))
    frame[::2, ::3] -= np.minimum(frame[::2, ::3], 9)    # not a perfectly flat image
    for k in range(4):                                  # the code stays in view for 4 frames
        rig.clock.advance(0.05)
        assert cam.handle_frame(frame, t=rig.clock.monotonic()) == [text]
    assert decisions[0].granted and rig.unlocked
    assert decisions[1:] == [None, None, None]           # repeats ignored, no "used" spam
    assert rig.last("door.granted").body["source"] == "camera"
    assert rig.types().count("door.denied") == 0


def test_camera_ignores_non_qr_codes(rig):
    import zxingcpp
    import numpy as np
    ean = np.asarray(zxingcpp.create_barcode("4006381333931", zxingcpp.BarcodeFormat.EAN13)
                     .to_image(scale=3), dtype=np.uint8)
    seen = []
    cam = CameraScanner(BarcodeReader(formats="EAN-13, QRCode"), seen.append)
    frame = paste_into_frame(np.pad(ean, 30, constant_values=255))
    assert [b.format for b in cam.reader.read(frame)] == ["EAN-13"]     # it is read ...
    assert cam.handle_frame(frame) == [] and seen == []                 # ... but not a QR


def test_camera_ignores_foreign_qr_codes_in_view(rig):
    """A poster QR (a URL) in the camera's view is not a denial and does not throttle."""
    decisions = []
    cam = CameraScanner(door_reader(), lambda t: decisions.append(rig.ctl.present(t, "camera")))
    poster = paste_into_frame(qr_gray("https://example.com/careers", scale=4), (1280, 720),
                              at=(40, 40))
    for _ in range(10):
        rig.clock.advance(5)
        assert cam.handle_frame(poster) == []
    assert cam.ignored == 10 and decisions == [] and "door.denied" not in rig.types()
    frame = poster.copy()
    sym = qr_gray(rig.issue(), scale=4)
    frame[250:250 + sym.shape[0], 700:700 + sym.shape[1]] = sym
    assert len(cam.handle_frame(frame)) == 1 and decisions[0].granted


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_fuzz_serial_bytes_never_unlock(rig, data):
    rig.ctl.repeat_s = 0.0
    rig.ctl.p.throttle.free = 10**9
    p = ScanLineParser(lambda ln: rig.ctl.present(ln.text, "serial"), max_line=700)
    p.data_received(data + b"\n")
    assert not rig.unlocked and "door.granted" not in rig.types()


def test_serial_scanner_reopens_after_unplug(rig):
    """The port fails (USB unplugged), reopening fails once, then works: scans resume."""
    results, ports = [], []
    attempts = {"n": 0}

    def reopen():
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise OSError("could not open port /dev/ttyACM0: No such file or directory")
        port = open_port("loop://", timeout=0.05)
        ports.append(port)
        return port

    class Unplugged:
        def read(self, n):
            raise OSError("device reports readiness to read but returned no data")

        def close(self):
            pass

    scanner = SerialScanner(Unplugged(), ScanLineParser(
        lambda ln: results.append(rig.ctl.present(ln.text, "serial"))), reopen=reopen,
        retry_s=0.05)
    scanner.start()
    try:
        assert wait_for(lambda: ports)
        ports[0].write(rig.issue().encode() + b"\r")
        assert wait_for(lambda: results)
    finally:
        scanner.stop()
    assert results[0].granted and scanner.reconnects == 1 and scanner.error is None
