"""V4L2 backend (drivers/camera/v4l2.py): kernel ABI, format negotiation, pixel conversion
against references, MJPEG decoding, clear errors, the capture loop, and a real virtual device.

The device tests need a ``v4l2loopback`` node; where the kernel has none they skip saying so.
The capture loop is also run against :class:`UvcDriverSim`, which plays the kernel side of the
mmap streaming protocol (QUERYCAP .. DQBUF) over a memfd, because no camera is attached here.
"""
from __future__ import annotations

import ctypes
import errno
import io
import os
import platform
import shutil
import struct
import threading
import time

import numpy as np
import pytest
from PIL import Image

from storeedge.drivers.camera import (CameraIOError, CameraUnavailable, i420_from_rgb,
                                      open_camera, self_test)
from storeedge.drivers.camera import v4l2

# --------------------------------------------------------------------------- references


def naive_yuyv_to_i420(buf: bytes, w: int, h: int, stride: int) -> np.ndarray:
    """Pixel by pixel, straight from the YUYV definition (the reference)."""
    out = np.zeros((h * 3 // 2, w), np.uint8)
    u_plane = np.zeros((h // 2, w // 2), np.uint8)
    v_plane = np.zeros((h // 2, w // 2), np.uint8)
    for y in range(h):
        for x in range(w):
            out[y, x] = buf[y * stride + 2 * x]
    for cy in range(h // 2):
        for cx in range(w // 2):
            a, b = (2 * cy) * stride + 4 * cx, (2 * cy + 1) * stride + 4 * cx
            u_plane[cy, cx] = (buf[a + 1] + buf[b + 1] + 1) // 2
            v_plane[cy, cx] = (buf[a + 3] + buf[b + 3] + 1) // 2
    out[h:h + h // 4] = u_plane.reshape(h // 4, w)
    out[h + h // 4:] = v_plane.reshape(h // 4, w)
    return out


def yuyv_from_i420(i420: np.ndarray) -> bytes:
    """Pack I420 as YUYV, each chroma row used for both rows it covers."""
    h, w = i420.shape[0] * 2 // 3, i420.shape[1]
    u = i420[h:h + h // 4].reshape(h // 2, w // 2).repeat(2, 0)
    v = i420[h + h // 4:].reshape(h // 2, w // 2).repeat(2, 0)
    out = np.empty((h, w * 2), np.uint8)
    out[:, 0::2] = i420[:h]
    out[:, 1::4] = u
    out[:, 3::4] = v
    return out.tobytes()


def scene(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A test picture: smooth gradients plus a bar pattern (edges like a barcode)."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                    (xx + yy) * 255 // (w + h)], axis=-1).astype(np.uint8)
    rng = np.random.default_rng(seed)
    bars = rng.integers(0, 2, w // 4).repeat(4)[:w].astype(bool)
    rgb[h // 3: h // 2, bars] = 0
    return rgb


def jpeg_bytes(rgb: np.ndarray, quality: int = 95) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def strip_dht(data: bytes) -> bytes:
    """The JPEG without its Huffman table segments, as a UVC camera sends MJPEG."""
    cut = [(s, e) for m, s, e in v4l2._jpeg_segments(data) if m == 0xC4]
    assert cut, "the encoder wrote Huffman tables"
    out, pos = b"", 0
    for s, e in cut:
        out += data[pos:s]
        pos = e
    return out + data[pos:]


# --------------------------------------------------------------------------- ABI and parsing


def test_ioctl_numbers_and_struct_sizes_are_the_kernels():
    """<linux/videodev2.h> on LP64 (aarch64, x86_64): a wrong field would change these."""
    assert v4l2.VIDIOC_QUERYCAP == 0x80685600
    assert v4l2.VIDIOC_ENUM_FMT == 0xC0405602
    assert v4l2.VIDIOC_S_FMT == 0xC0D05605
    assert v4l2.VIDIOC_REQBUFS == 0xC0145608
    assert v4l2.VIDIOC_QUERYBUF == 0xC0585609
    assert v4l2.VIDIOC_QBUF == 0xC058560F and v4l2.VIDIOC_DQBUF == 0xC0585611
    assert v4l2.VIDIOC_STREAMON == 0x40045612 and v4l2.VIDIOC_S_PARM == 0xC0CC5616
    assert v4l2.V4l2Buffer.timestamp.offset == 24 and v4l2.V4l2Buffer.m.offset == 64
    assert ctypes.sizeof(v4l2.V4l2Format) == 208 and ctypes.sizeof(v4l2.V4l2Buffer) == 88
    assert v4l2.fourcc("YUYV") == 0x56595559 and v4l2.fourcc_str(0x47504A4D) == "MJPG"


def fmtdesc_bytes(index: int, code: str, text: str, compressed: bool) -> bytes:
    """A v4l2_fmtdesc as the kernel fills it (64 bytes)."""
    return struct.pack("<III32sII12x", index, 1, 1 if compressed else 0, text.encode(),
                       v4l2.fourcc(code), 0)


def offered(*codes: str) -> list[v4l2.FormatDesc]:
    return [v4l2.parse_fmtdesc(v4l2.V4l2FmtDesc.from_buffer_copy(
        fmtdesc_bytes(i, c, f"{c} format", c == "MJPG"))) for i, c in enumerate(codes)]


def test_format_negotiation_parses_and_prefers_yuyv():
    mjpg, yuyv = offered("MJPG", "YUYV")
    assert mjpg == v4l2.FormatDesc(0, "MJPG", "MJPG format", True)
    assert yuyv.fourcc == "YUYV" and not yuyv.compressed
    assert v4l2.choose_format([mjpg, yuyv]) == "YUYV"
    assert v4l2.choose_format([mjpg, yuyv], "mjpeg") == "MJPG"
    assert v4l2.choose_format(offered("H264", "MJPG")) == "MJPG"
    with pytest.raises(CameraUnavailable, match=r"/dev/video3 offers H264, NV12; storeedge "
                                                r"needs YUYV or MJPG"):
        v4l2.choose_format(offered("H264", "NV12"), "auto", "/dev/video3")
    with pytest.raises(CameraUnavailable, match="offers MJPG; storeedge needs YUYV"):
        v4l2.choose_format(offered("MJPG"), "YUYV")
    with pytest.raises(CameraUnavailable, match="'RGB3' is not supported"):
        v4l2.choose_format(offered("YUYV"), "RGB3")


def test_capability_uses_the_nodes_own_caps():
    raw = struct.pack("<16s32s32sIII12x", b"uvcvideo", b"USB Camera", b"usb-0000:01:00.0-1.2",
                      0x60000, v4l2.CAP_DEVICE_CAPS | 0x04A00001 | 0x00800000, 0x00800000)
    meta = v4l2.parse_capability("/dev/video1", v4l2.V4l2Capability.from_buffer_copy(raw))
    assert meta.card == "USB Camera" and meta.driver == "uvcvideo"
    assert not meta.can_capture, "the metadata node of a UVC camera cannot stream video"
    raw = raw[:88] + struct.pack("<I", 0x04200001) + raw[92:]
    video = v4l2.parse_capability("/dev/video0", v4l2.V4l2Capability.from_buffer_copy(raw))
    assert video.can_capture


# --------------------------------------------------------------------------- conversion


@pytest.mark.parametrize("pad", [0, 16])
def test_yuyv_to_i420_and_gray_match_the_reference(pad):
    w, h = 12, 8
    stride = w * 2 + pad
    buf = np.random.default_rng(pad).integers(0, 256, stride * h, dtype=np.uint8).tobytes()
    ref = naive_yuyv_to_i420(buf, w, h, stride)
    got = v4l2.yuyv_to_i420(buf, w, h, stride)
    assert got.shape == (12, 12) and np.array_equal(got, ref)
    assert np.array_equal(v4l2.yuyv_to_gray(buf, w, h, stride), ref[:h])
    with pytest.raises(CameraIOError, match="short YUYV frame"):
        v4l2.yuyv_to_gray(buf[:-pad - 3], w, h, stride)


def test_yuyv_streams_reproduce_the_scene():
    """YUYV packed from the scene's I420 comes back as that I420, and the lores stream is the
    box-scaled picture (same tolerance as the picamera2 ISP's)."""
    rgb = scene(640, 360)
    ref = i420_from_rgb(rgb)
    packed = yuyv_from_i420(ref)
    assert np.array_equal(v4l2.yuyv_to_i420(packed, 640, 360), ref)
    main, lores = v4l2.yuyv_to_streams(packed, (640, 360), (320, 180))
    assert np.array_equal(main, ref[:360])
    small = np.asarray(Image.fromarray(rgb).resize((320, 180), Image.BOX))
    diff = np.abs(lores.astype(int) - i420_from_rgb(small).astype(int))
    assert lores.shape == (270, 320) and diff.mean() < 1.0 and diff.max() <= 8


@pytest.mark.parametrize("code", ["YUYV", "MJPG"])
def test_lores_with_an_odd_half_height_keeps_the_i420_layout(code):
    """lores 160x90: each chroma plane is 80x45, which does not fill whole rows of 160."""
    rgb = scene(640, 360, seed=9)
    if code == "YUYV":
        main, lores = v4l2.yuyv_to_streams(yuyv_from_i420(i420_from_rgb(rgb)), (640, 360),
                                           (160, 90))
    else:
        main, lores = v4l2.mjpeg_to_streams(jpeg_bytes(rgb), (640, 360), (160, 90))
    assert main.shape == (360, 640) and lores.shape == (135, 160)
    flat = lores.reshape(-1)
    y, u, v = (flat[:14400].reshape(90, 160), flat[14400:18000].reshape(45, 80),
               flat[18000:].reshape(45, 80))
    small = np.asarray(Image.fromarray(rgb).resize((160, 90), Image.BOX)).astype(float)
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    ref_y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    sub = small.reshape(45, 2, 80, 2, 3).mean(axis=(1, 3))
    ref_u = 128 + (-37.797 * sub[..., 0] - 74.203 * sub[..., 1] + 112.0 * sub[..., 2]) / 255
    ref_v = 128 + (112.0 * sub[..., 0] - 93.786 * sub[..., 1] - 18.214 * sub[..., 2]) / 255
    for got, ref in ((y, ref_y), (u, ref_u), (v, ref_v)):
        assert np.abs(got - ref).mean() < 2.0


def test_mjpeg_frames_decode_with_or_without_huffman_tables():
    rgb = scene(320, 240, seed=3)
    full = jpeg_bytes(rgb)
    bare = strip_dht(full)
    assert not [m for m, _s, _e in v4l2._jpeg_segments(bare) if m == 0xC4]
    main_a, lores_a = v4l2.mjpeg_to_streams(full, (320, 240), (160, 120))
    main_b, lores_b = v4l2.mjpeg_to_streams(bare, (320, 240), (160, 120))
    assert np.array_equal(main_a, main_b) and np.array_equal(lores_a, lores_b)
    ref_y = i420_from_rgb(rgb)[:240].astype(int)                 # limited range, like picamera2
    diff = np.abs(main_a.astype(int) - ref_y)
    assert diff.mean() < 2.0 and main_a.min() >= 16 and main_a.max() <= 235
    small = np.asarray(Image.fromarray(rgb).resize((160, 120), Image.BOX))
    assert np.abs(lores_a.astype(int) - i420_from_rgb(small).astype(int)).mean() < 2.0


def test_bad_mjpeg_frames_raise_camera_io_errors():
    good = jpeg_bytes(scene(64, 48))
    with pytest.raises(CameraIOError, match="SOI"):
        v4l2.mjpeg_to_streams(b"\x00" * 100, (64, 48), (32, 24))
    with pytest.raises(CameraIOError, match="corrupt MJPEG frame"):
        v4l2.mjpeg_to_streams(good[: len(good) // 2], (64, 48), (32, 24))
    with pytest.raises(CameraIOError, match="negotiated 640x480"):
        v4l2.mjpeg_to_streams(good, (640, 480), (32, 24))


# --------------------------------------------------------------------------- errors


def test_missing_or_wrong_device_is_a_clear_error():
    with pytest.raises(CameraUnavailable, match=r"no V4L2 device /dev/video97 \(is the USB "
                                                r"camera plugged in"):
        open_camera("v4l2", device="/dev/video97")
    with pytest.raises(CameraUnavailable, match="/dev/null is not a V4L2 device"):
        open_camera("v4l2", device="/dev/null")


class UvcDriverSim:
    """The kernel side of V4L2 mmap streaming for one capture node, over a memfd.

    Answers the ioctls the backend makes like uvcvideo does (QUERYCAP, ENUM_FMT, S_FMT with
    the nearest size it has, S_PARM, REQBUFS, QUERYBUF, QBUF, DQBUF, STREAMON/OFF), returns
    queued buffers filled by ``frame_source(seq)`` in queue order, and can refuse S_FMT with
    EBUSY like a node another process streams from.
    """

    SIZES = ((640, 480), (320, 240))

    def __init__(self, formats=("MJPG", "YUYV"), frame_source=None, busy=False, fps=None):
        self.formats, self.source, self.busy = formats, frame_source, busy
        self.fps = fps or {"YUYV": 15, "MJPG": 15}      # the rate each format reaches
        self.fd = os.memfd_create("uvc-sim")
        self.size = self.SIZES[0]
        self.code = formats[0]
        self.queued: list[int] = []
        self.lengths: list[int] = []
        self.seq = 0
        self.streaming = False
        self.calls: list[int] = []

    def ioctl(self, fd, request, arg):
        assert fd != self.fd, "the backend must use its own descriptor"
        self.calls.append(request)
        handler = {v4l2.VIDIOC_QUERYCAP: self._querycap, v4l2.VIDIOC_ENUM_FMT: self._enum,
                   v4l2.VIDIOC_S_FMT: self._s_fmt, v4l2.VIDIOC_S_PARM: self._s_parm,
                   v4l2.VIDIOC_REQBUFS: self._reqbufs, v4l2.VIDIOC_QUERYBUF: self._querybuf,
                   v4l2.VIDIOC_QBUF: self._qbuf, v4l2.VIDIOC_DQBUF: self._dqbuf,
                   v4l2.VIDIOC_STREAMON: self._stream, v4l2.VIDIOC_STREAMOFF: self._stream}
        handler[request](arg)

    def _querycap(self, cap):
        cap.driver, cap.card = b"uvcvideo", b"Sim UVC Camera"
        cap.capabilities = v4l2.CAP_DEVICE_CAPS | 0x84A00001
        cap.device_caps = v4l2.CAP_VIDEO_CAPTURE | v4l2.CAP_STREAMING

    def _enum(self, desc):
        if desc.index >= len(self.formats):
            raise OSError(errno.EINVAL, "Invalid argument")
        desc.pixelformat = v4l2.fourcc(self.formats[desc.index])
        desc.description = self.formats[desc.index].encode()

    def _s_fmt(self, fmt):
        if self.busy:
            raise OSError(errno.EBUSY, "Device or resource busy")
        pix = fmt.fmt.pix
        want = (pix.width, pix.height)
        self.size = min(self.SIZES, key=lambda s: abs(s[0] - want[0]) + abs(s[1] - want[1]))
        self.code = v4l2.fourcc_str(pix.pixelformat)
        pix.width, pix.height = self.size
        pix.bytesperline = self.size[0] * 2 if self.code == "YUYV" else 0

    def _s_parm(self, parm):
        parm.parm.capture.timeperframe.numerator = 1
        parm.parm.capture.timeperframe.denominator = self.fps[self.code]

    def _reqbufs(self, req):
        self.lengths = [self.size[0] * self.size[1] * 2] * req.count
        os.ftruncate(self.fd, sum(self.lengths) + 4096 * req.count)

    def _offset(self, index):
        return index * (self.lengths[0] // 4096 + 1) * 4096

    def _querybuf(self, buf):
        buf.length, buf.m.offset = self.lengths[buf.index], self._offset(buf.index)

    def _qbuf(self, buf):
        assert buf.index not in self.queued, "buffer queued twice"
        self.queued.append(buf.index)

    def _dqbuf(self, buf):
        if not self.streaming or not self.queued or self.source is None:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        index = self.queued.pop(0)
        data, flags = self.source(self.seq)
        os.pwrite(self.fd, data, self._offset(index))
        buf.index, buf.bytesused, buf.sequence = index, len(data), self.seq
        buf.flags = v4l2.BUF_FLAG_TIMESTAMP_MONOTONIC | flags
        buf.timestamp.tv_sec, buf.timestamp.tv_usec = 100 + self.seq // 15, \
            (self.seq % 15) * 66_666
        self.seq += 1

    def _stream(self, arg):
        self.streaming = not self.streaming

    def install(self, monkeypatch):
        """Route the backend's open and ioctls for /dev/video-sim to this simulated node."""
        real_open = v4l2._open_node
        monkeypatch.setattr(v4l2, "_ioctl", self.ioctl)
        monkeypatch.setattr(v4l2, "_open_node", lambda path: os.open(
            f"/proc/self/fd/{self.fd}", os.O_RDWR) if path == "/dev/video-sim"
            else real_open(path))


def test_busy_device_is_a_clear_error_and_nothing_leaks(monkeypatch):
    sim = UvcDriverSim(busy=True)
    sim.install(monkeypatch)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(CameraUnavailable, match=r"/dev/video-sim is busy: another process is "
                                                r"streaming from it"):
        open_camera("v4l2", device="/dev/video-sim")
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("code", ["YUYV", "MJPG"])
def test_capture_loop_streams_frames_with_driver_timestamps(monkeypatch, code):
    rgb = scene(640, 480, seed=5)
    ref = i420_from_rgb(rgb)
    payload = yuyv_from_i420(ref) if code == "YUYV" else strip_dht(jpeg_bytes(rgb))

    def source(seq):
        if seq == 2:                                  # one damaged frame from the camera
            return (b"\x00" * 64 if code == "MJPG" else payload), v4l2.BUF_FLAG_ERROR * (
                code == "YUYV")
        return payload, 0

    sim = UvcDriverSim(formats=("MJPG", "YUYV"), frame_source=source)
    sim.install(monkeypatch)
    cam = open_camera("v4l2", device="/dev/video-sim", main_size=(600, 500),
                      lores_size=(320, 240), fps=30, pixel_format=code)
    assert cam.info == ("v4l2", (640, 480), (320, 240), 15.0)   # what the driver granted
    frames = [cam.capture(timeout_s=1.0) for _ in range(4)]
    assert [f.seq for f in frames] == [0, 1, 3, 4] and cam.corrupt_frames == 1
    assert frames[1].t - frames[0].t == pytest.approx(0.066666, abs=1e-6)
    tol = 0 if code == "YUYV" else 2.0
    assert np.abs(frames[0].main.astype(int) - ref[:480]).mean() <= tol
    assert frames[0].lores.shape == (360, 320)
    report = self_test(cam, n_frames=3)
    assert report.ok and report.backend == "v4l2", report.problems
    cam.close()
    cam.close()
    assert not sim.streaming and v4l2.VIDIOC_STREAMOFF in sim.calls
    with pytest.raises(CameraIOError, match="closed"):
        cam.capture()


@pytest.mark.parametrize("rates, expect", [({"YUYV": 30, "MJPG": 30}, ("YUYV", 30.0)),
                                           ({"YUYV": 10, "MJPG": 30}, ("MJPG", 30.0)),
                                           ({"YUYV": 10, "MJPG": 5}, ("YUYV", 10.0))])
def test_auto_format_takes_mjpeg_only_when_yuyv_cannot_keep_the_rate(monkeypatch, rates,
                                                                      expect):
    sim = UvcDriverSim(formats=("MJPG", "YUYV"), frame_source=None, fps=rates)
    sim.install(monkeypatch)
    with open_camera("v4l2", device="/dev/video-sim", main_size=(640, 480), fps=30) as cam:
        assert (cam.mode.fourcc, cam.info.fps) == expect
        assert sim.code == expect[0], "the driver was left in the format the backend uses"
    explicit = UvcDriverSim(formats=("MJPG", "YUYV"), fps={"YUYV": 10, "MJPG": 30})
    explicit.install(monkeypatch)
    with open_camera("v4l2", device="/dev/video-sim", fps=30, pixel_format="YUYV") as cam:
        assert cam.mode.fourcc == "YUYV" and cam.info.fps == 10.0


def test_stalled_camera_returns_none(monkeypatch):
    sim = UvcDriverSim(formats=("YUYV",), frame_source=None)
    sim.install(monkeypatch)
    with open_camera("v4l2", device="/dev/video-sim", main_size=(320, 240)) as cam:
        assert cam.capture(timeout_s=0.05) is None


# --------------------------------------------------------------------------- a real device


def _loopback_node() -> str | None:
    try:
        for info in v4l2.list_devices():
            if "loopback" in info.driver.lower() or "loopback" in info.card.lower():
                return info.path
    except FileNotFoundError:
        return None
    for name in sorted(os.listdir("/sys/devices/virtual/video4linux")
                       if os.path.isdir("/sys/devices/virtual/video4linux") else []):
        return f"/dev/{name}"
    return None


def _no_loopback_reason() -> str:
    release = platform.release()
    if shutil.which("modprobe") is None:
        why = "this system has no modprobe"
    elif not os.path.isdir(f"/lib/modules/{release}"):
        why = f"kernel {release} has no module tree"
    else:
        why = "run: modprobe v4l2loopback exclusive_caps=0"
    return f"no v4l2loopback device (/dev/video*): {why}"


LOOPBACK = _loopback_node()


@pytest.mark.skipif(LOOPBACK is None, reason=_no_loopback_reason())
def test_real_v4l2loopback_device_streams_what_is_written():
    """A writer feeds YUYV frames into the loopback node; the backend captures them."""
    w, h = 320, 240
    ref = i420_from_rgb(scene(w, h, seed=7))
    payload = yuyv_from_i420(ref)
    writer = os.open(LOOPBACK, os.O_RDWR)
    fmt = v4l2.V4l2Format(type=2)                         # V4L2_BUF_TYPE_VIDEO_OUTPUT
    fmt.fmt.pix.width, fmt.fmt.pix.height = w, h
    fmt.fmt.pix.pixelformat, fmt.fmt.pix.field = v4l2.fourcc("YUYV"), v4l2.FIELD_NONE
    fmt.fmt.pix.bytesperline, fmt.fmt.pix.sizeimage = w * 2, w * h * 2
    v4l2._ioctl(writer, v4l2.VIDIOC_S_FMT, fmt)
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            os.write(writer, payload)
            time.sleep(1 / 30)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        with open_camera("v4l2", device=LOOPBACK, main_size=(w, h), lores_size=(160, 120),
                         pixel_format="YUYV") as cam:
            frames = [cam.capture(timeout_s=2.0) for _ in range(5)]
            assert all(f is not None for f in frames)
            assert np.array_equal(frames[-1].main, ref[:h])
            assert all(b.t > a.t for a, b in zip(frames, frames[1:]))
    finally:
        stop.set()
        thread.join(5)
        os.close(writer)



def test_lane_config_selects_the_v4l2_camera():
    """``checkout.camera.type: v4l2`` reaches this backend; a bad pixel format is a config
    error naming the key."""
    from storeedge.firmware.checkout.app import make_camera
    from storeedge.firmware.checkout.config import CheckoutConfig
    from storeedge.config import ConfigError, config_from_dict

    cfg = config_from_dict({"checkout": {"camera": {"type": "v4l2", "device": "/dev/video97",
                                                    "pixel_format": "MJPEG"}},
                            "security": {"insecure": True}}, CheckoutConfig)
    assert cfg.checkout.camera.device == "/dev/video97"
    with pytest.raises(CameraUnavailable, match="no V4L2 device /dev/video97"):
        make_camera(cfg.checkout, clock=None)
    with pytest.raises(ConfigError, match="pixel_format"):
        config_from_dict({"checkout": {"camera": {"type": "v4l2", "pixel_format": "H264"}}},
                         CheckoutConfig)
