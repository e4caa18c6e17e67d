"""V4L2 backend: USB (UVC) cameras through the kernel's video4linux2 API, in pure Python.

Streaming I/O with ``ioctl`` (``fcntl``) and ``mmap`` on ``/dev/videoN``; the structures are
those of ``<linux/videodev2.h>`` for 64-bit Linux (aarch64, x86_64), written with ``ctypes``.
Pixel formats: ``YUYV`` (packed 4:2:2) and ``MJPG`` (decoded with Pillow, also frames without
Huffman tables as UVC cameras send them).  No OpenCV, no libv4l.

A frame gives the same two streams as the picamera2 backend, from the one stream a USB camera
delivers: ``main`` = luma (Y, BT.601 limited range 16..235) at the negotiated size, ``lores`` =
I420 scaled to ``lores_size`` (box filter).  The driver may adjust the requested size (UVC
cameras offer a fixed list): ``info.main_size`` is what it gave.  ``Frame.t`` is the driver's
buffer timestamp (CLOCK_MONOTONIC, seconds) when the driver says it is monotonic, otherwise
the dequeue time on the same clock.  Nothing is imported from this module until the backend is
opened (``open_camera("v4l2", device="/dev/video0")``).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import io
import mmap
import os
import select
import time
from typing import NamedTuple

import numpy as np

from storeedge.drivers.camera.base import Camera, CameraInfo, Frame
from storeedge.drivers.camera.exc import CameraIOError, CameraUnavailable

# --------------------------------------------------------------------------- kernel ABI

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, nr: int, struct) -> int:
    """``_IOC(dir, 'V', nr, sizeof(struct))`` of <asm-generic/ioctl.h>."""
    return (direction << 30) | (ctypes.sizeof(struct) << 16) | (ord("V") << 8) | nr


class V4l2Capability(ctypes.Structure):
    _fields_ = [("driver", ctypes.c_char * 16), ("card", ctypes.c_char * 32),
                ("bus_info", ctypes.c_char * 32), ("version", ctypes.c_uint32),
                ("capabilities", ctypes.c_uint32), ("device_caps", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32 * 3)]


class V4l2FmtDesc(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("type", ctypes.c_uint32),
                ("flags", ctypes.c_uint32), ("description", ctypes.c_char * 32),
                ("pixelformat", ctypes.c_uint32), ("mbus_code", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32 * 3)]


class V4l2PixFormat(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in (
        "width", "height", "pixelformat", "field", "bytesperline", "sizeimage", "colorspace",
        "priv", "flags", "ycbcr_enc", "quantization", "xfer_func")]


class _FmtUnion(ctypes.Union):
    # raw_data[200] plus a pointer member: v4l2_window holds pointers, so the union is 8-aligned.
    _fields_ = [("pix", V4l2PixFormat), ("raw_data", ctypes.c_uint8 * 200),
                ("_align", ctypes.c_void_p)]


class V4l2Format(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("fmt", _FmtUnion)]


class V4l2Fract(ctypes.Structure):
    _fields_ = [("numerator", ctypes.c_uint32), ("denominator", ctypes.c_uint32)]


class V4l2CaptureParm(ctypes.Structure):
    _fields_ = [("capability", ctypes.c_uint32), ("capturemode", ctypes.c_uint32),
                ("timeperframe", V4l2Fract), ("extendedmode", ctypes.c_uint32),
                ("readbuffers", ctypes.c_uint32), ("reserved", ctypes.c_uint32 * 4)]


class _ParmUnion(ctypes.Union):
    _fields_ = [("capture", V4l2CaptureParm), ("raw_data", ctypes.c_uint8 * 200)]


class V4l2StreamParm(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("parm", _ParmUnion)]


class V4l2RequestBuffers(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint32), ("type", ctypes.c_uint32),
                ("memory", ctypes.c_uint32), ("capabilities", ctypes.c_uint32),
                ("flags", ctypes.c_uint8), ("reserved", ctypes.c_uint8 * 3)]


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class V4l2Timecode(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("frames", ctypes.c_uint8), ("seconds", ctypes.c_uint8),
                ("minutes", ctypes.c_uint8), ("hours", ctypes.c_uint8),
                ("userbits", ctypes.c_uint8 * 4)]


class _BufM(ctypes.Union):
    _fields_ = [("offset", ctypes.c_uint32), ("userptr", ctypes.c_ulong),
                ("planes", ctypes.c_void_p), ("fd", ctypes.c_int32)]


class V4l2Buffer(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("type", ctypes.c_uint32),
                ("bytesused", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("field", ctypes.c_uint32), ("timestamp", Timeval),
                ("timecode", V4l2Timecode), ("sequence", ctypes.c_uint32),
                ("memory", ctypes.c_uint32), ("m", _BufM), ("length", ctypes.c_uint32),
                ("reserved2", ctypes.c_uint32), ("request_fd", ctypes.c_int32)]


VIDIOC_QUERYCAP = _ioc(_IOC_READ, 0, V4l2Capability)
VIDIOC_ENUM_FMT = _ioc(_IOC_READ | _IOC_WRITE, 2, V4l2FmtDesc)
VIDIOC_G_FMT = _ioc(_IOC_READ | _IOC_WRITE, 4, V4l2Format)
VIDIOC_S_FMT = _ioc(_IOC_READ | _IOC_WRITE, 5, V4l2Format)
VIDIOC_REQBUFS = _ioc(_IOC_READ | _IOC_WRITE, 8, V4l2RequestBuffers)
VIDIOC_QUERYBUF = _ioc(_IOC_READ | _IOC_WRITE, 9, V4l2Buffer)
VIDIOC_QBUF = _ioc(_IOC_READ | _IOC_WRITE, 15, V4l2Buffer)
VIDIOC_DQBUF = _ioc(_IOC_READ | _IOC_WRITE, 17, V4l2Buffer)
VIDIOC_STREAMON = _ioc(_IOC_WRITE, 18, ctypes.c_int)
VIDIOC_STREAMOFF = _ioc(_IOC_WRITE, 19, ctypes.c_int)
VIDIOC_S_PARM = _ioc(_IOC_READ | _IOC_WRITE, 22, V4l2StreamParm)

BUF_TYPE_VIDEO_CAPTURE = 1
MEMORY_MMAP = 1
FIELD_NONE = 1
CAP_VIDEO_CAPTURE = 0x00000001
CAP_STREAMING = 0x04000000
CAP_DEVICE_CAPS = 0x80000000
FMT_FLAG_COMPRESSED = 0x0001
BUF_FLAG_ERROR = 0x0040
BUF_FLAG_TIMESTAMP_MASK = 0xE000
BUF_FLAG_TIMESTAMP_MONOTONIC = 0x2000


def fourcc(code: str) -> int:
    """``v4l2_fourcc('Y','U','Y','V')``: four ASCII characters, little-endian."""
    raw = code.encode("ascii")
    if len(raw) != 4:
        raise ValueError(f"a fourcc is four characters, not {code!r}")
    return int.from_bytes(raw, "little")


def fourcc_str(value: int) -> str:
    return value.to_bytes(4, "little").decode("ascii", "replace")


#: The formats this backend decodes, in the order "auto" prefers them (YUYV needs no decode).
SUPPORTED = ("YUYV", "MJPG")


# --------------------------------------------------------------------------- negotiation

class FormatDesc(NamedTuple):
    """One pixel format a device offers (VIDIOC_ENUM_FMT)."""

    index: int
    fourcc: str
    description: str
    compressed: bool


class DeviceInfo(NamedTuple):
    """What VIDIOC_QUERYCAP says about a device."""

    path: str
    driver: str
    card: str
    bus_info: str
    capabilities: int

    @property
    def can_capture(self) -> bool:
        caps = self.capabilities
        return bool(caps & CAP_VIDEO_CAPTURE) and bool(caps & CAP_STREAMING)


def parse_fmtdesc(desc: V4l2FmtDesc) -> FormatDesc:
    """A filled ``v4l2_fmtdesc`` as a :class:`FormatDesc`."""
    return FormatDesc(desc.index, fourcc_str(desc.pixelformat),
                      desc.description.decode("utf-8", "replace"),
                      bool(desc.flags & FMT_FLAG_COMPRESSED))


def parse_capability(path: str, cap: V4l2Capability) -> DeviceInfo:
    """A filled ``v4l2_capability``; the node's own ``device_caps`` when the driver sets them."""
    caps = cap.device_caps if cap.capabilities & CAP_DEVICE_CAPS else cap.capabilities
    return DeviceInfo(path, cap.driver.decode("utf-8", "replace"),
                      cap.card.decode("utf-8", "replace"),
                      cap.bus_info.decode("utf-8", "replace"), caps)


def choose_format(offered: list[FormatDesc], want: str = "auto", device: str = "") -> str:
    """The fourcc to use: ``want`` (``YUYV``/``MJPG``/``MJPEG``) if offered, for ``auto`` the
    first of :data:`SUPPORTED` offered; otherwise :class:`CameraUnavailable` naming both."""
    codes = [f.fourcc for f in offered]
    want = "MJPG" if want.upper() == "MJPEG" else want.upper()
    if want != "AUTO" and want not in SUPPORTED:
        raise CameraUnavailable(f"pixel format {want!r} is not supported; use one of "
                                f"{', '.join(SUPPORTED)} or auto")
    for code in (SUPPORTED if want == "AUTO" else (want,)):
        if code in codes:
            return code
    need = " or ".join(SUPPORTED) if want == "AUTO" else want
    raise CameraUnavailable(f"{device or 'the camera'} offers {', '.join(codes) or 'no format'};"
                            f" storeedge needs {need}")


# --------------------------------------------------------------------------- conversion

#: JFIF (full range) -> BT.601 limited range, for Pillow's Image.point (256 entries).
_LUMA_LUT = [int(round(16.0 + v * 219.0 / 255.0)) for v in range(256)]
_CHROMA_LUT = [int(round(128.0 + (v - 128.0) * 224.0 / 255.0)) for v in range(256)]


def _yuyv_view(buf, width: int, height: int, bytesperline: int = 0) -> np.ndarray:
    """The YUYV bytes as (height, width * 2) uint8, honouring row padding (bytes)."""
    stride = bytesperline or width * 2
    need = stride * (height - 1) + width * 2
    data = np.frombuffer(buf, np.uint8)
    if data.size < need:
        raise CameraIOError(f"short YUYV frame: {data.size} bytes, {width}x{height} needs {need}")
    return np.lib.stride_tricks.as_strided(data, (height, width * 2), (stride, 1),
                                           writeable=False)


def yuyv_to_gray(buf, width: int, height: int, bytesperline: int = 0) -> np.ndarray:
    """Packed YUYV (Y0 U Y1 V per two pixels) -> luma uint8 (height, width)."""
    return np.ascontiguousarray(_yuyv_view(buf, width, height, bytesperline)[:, 0::2])


def yuyv_to_i420(buf, width: int, height: int, bytesperline: int = 0) -> np.ndarray:
    """Packed YUYV -> I420 uint8 (height * 3 // 2, width): Y as is, U and V from the 4:2:2
    chroma with each pair of rows averaged (rounded half up).  height and width even."""
    if width % 2 or height % 2:
        raise ValueError(f"I420 needs an even size, not {width}x{height}")
    v = _yuyv_view(buf, width, height, bytesperline)
    chroma = []
    for col in (1, 3):                                  # U at byte 1, V at byte 3 of 4
        c = v[:, col::4].astype(np.uint16)
        chroma.append(((c[0::2] + c[1::2] + 1) >> 1).astype(np.uint8))   # (h/2, w/2)
    return pack_i420(v[:, 0::2], *chroma)


def pack_i420(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Planes Y (h, w), U and V (h/2, w/2) -> I420 uint8 (h * 3 // 2, w), planes back to back
    (also when h / 2 is odd, where a chroma plane does not fill whole rows)."""
    h, w = y.shape
    out = np.empty((h * 3 // 2, w), np.uint8)
    flat = out.reshape(-1)
    n, c = h * w, (h // 2) * (w // 2)
    flat[:n] = y.reshape(-1)
    flat[n:n + c] = u.reshape(-1)
    flat[n + c:n + 2 * c] = v.reshape(-1)
    return out


def _box(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one 8-bit plane to ``size`` = (w, h) px with a box filter (Pillow)."""
    from PIL import Image

    if plane.shape[::-1] == tuple(size):
        return np.ascontiguousarray(plane)
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize(size, Image.BOX))


def _jpeg_segments(data: bytes):
    """(marker, start, end) of each segment before the scan data (SOS included)."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        yield marker, pos, pos + 2 + length
        if marker == 0xDA:
            return
        pos += 2 + length


def mjpeg_to_streams(data: bytes, main_size: tuple[int, int],
                     lores_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One MJPEG frame -> (main luma (h, w) limited range, lores I420 of ``lores_size``).

    Decoded once, in the JPEG's own YCbCr (no RGB round trip); the lores planes are box-scaled
    from it and mapped from JFIF full range to BT.601 limited range like the picamera2 streams.
    UVC cameras leave the standard Huffman tables out of their frames (Motion-JPEG allows it);
    Pillow's libjpeg-turbo supplies them, as Debian's libjpeg62-turbo does.
    """
    from PIL import Image

    if bytes(data[:2]) != b"\xff\xd8":
        raise CameraIOError("MJPEG frame does not start with a JPEG SOI marker")
    try:
        img = Image.open(io.BytesIO(bytes(data)))
        img.draft("YCbCr", None)                  # the decoder's own YCbCr, no colour convert
        img.load()
        if img.mode != "YCbCr":
            img = img.convert("YCbCr")
    except (OSError, ValueError, SyntaxError) as exc:
        raise CameraIOError(f"corrupt MJPEG frame: {exc}") from exc
    if img.size != tuple(main_size):
        raise CameraIOError(f"MJPEG frame is {img.size[0]}x{img.size[1]}, "
                            f"negotiated {main_size[0]}x{main_size[1]}")
    y, cb, cr = img.split()
    lw, lh = lores_size
    half = (lw // 2, lh // 2)
    lores = pack_i420(np.asarray(y.resize((lw, lh), Image.BOX).point(_LUMA_LUT)),
                      np.asarray(cb.resize(half, Image.BOX).point(_CHROMA_LUT)),
                      np.asarray(cr.resize(half, Image.BOX).point(_CHROMA_LUT)))
    return np.asarray(y.point(_LUMA_LUT)), lores


def yuyv_to_streams(buf, main_size: tuple[int, int], lores_size: tuple[int, int],
                    bytesperline: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One YUYV frame -> (main luma (h, w), lores I420 of ``lores_size``): the lores planes
    are box-scaled straight from the packed 4:2:2 chroma (no full-size I420 in between)."""
    w, h = main_size
    lw, lh = lores_size
    v = _yuyv_view(buf, w, h, bytesperline)
    main = np.ascontiguousarray(v[:, 0::2])
    half = (lw // 2, lh // 2)                           # U at byte 1, V at byte 3 of 4
    return main, pack_i420(_box(main, (lw, lh)), _box(v[:, 1::4], half), _box(v[:, 3::4], half))


# --------------------------------------------------------------------------- the device

def _ioctl(fd: int, request: int, arg) -> None:
    fcntl.ioctl(fd, request, arg)


def _open_node(path: str) -> int:
    """Open a video node for streaming (non-blocking: capture() polls with a timeout)."""
    return os.open(path, os.O_RDWR | os.O_NONBLOCK)


def _open_error(path: str, exc: OSError) -> CameraUnavailable:
    """One clear line for the ways opening a video node fails."""
    if exc.errno == errno.ENOENT:
        return CameraUnavailable(f"no V4L2 device {path} (is the USB camera plugged in? "
                                 "ls /dev/video*)")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return CameraUnavailable(f"no permission to open {path} (the app user must be in "
                                 "the video group)")
    if exc.errno == errno.EBUSY:
        return CameraUnavailable(f"{path} is busy: another process is streaming from it "
                                 f"(fuser -v {path})")
    if exc.errno == errno.ENOTTY:
        return CameraUnavailable(f"{path} is not a V4L2 device")
    return CameraUnavailable(f"cannot open {path}: {exc.strerror or exc}")


def query_device(path: str) -> DeviceInfo:
    """VIDIOC_QUERYCAP of ``path`` (opened and closed again)."""
    try:
        fd = _open_node(path)
    except OSError as exc:
        raise _open_error(path, exc) from None
    try:
        cap = V4l2Capability()
        _ioctl(fd, VIDIOC_QUERYCAP, cap)
        return parse_capability(path, cap)
    except OSError as exc:
        raise _open_error(path, exc) from None
    finally:
        os.close(fd)


def list_devices(pattern_dir: str = "/dev") -> list[DeviceInfo]:
    """Every ``/dev/videoN`` that can capture and stream (metadata nodes left out)."""
    found = []
    names = sorted((n for n in os.listdir(pattern_dir) if n.startswith("video")
                    and n[5:].isdigit()), key=lambda n: int(n[5:]))
    for name in names:
        try:
            info = query_device(os.path.join(pattern_dir, name))
        except CameraUnavailable:
            continue
        if info.can_capture:
            found.append(info)
    return found


class _Negotiated(NamedTuple):
    """What the driver agreed to: fourcc, size (w, h) px, bytes per line, fps (frames/s)."""

    fourcc: str
    size: tuple[int, int]
    bytesperline: int
    fps: float


class V4L2Camera(Camera):
    """A USB (UVC) camera, or any V4L2 capture node, through mmap streaming.

    Args:
        device: the video node, e.g. ``/dev/video0``.
        main_size: (w, h) px requested (the driver may pick the nearest size it has).
        lores_size: (w, h) px of the lores I420 stream (even).
        fps: frames per second requested (VIDIOC_S_PARM; ignored by drivers that cannot).
        pixel_format: ``auto`` (YUYV, or MJPEG when YUYV cannot reach ``fps`` at this size
            and MJPEG can do better), ``YUYV`` or ``MJPEG``.
        buffers: number of mmap buffers (2..32).
    """

    def __init__(self, *, device: str = "/dev/video0", main_size=(1280, 720),
                 lores_size=(320, 180), fps: float = 30.0, pixel_format: str = "auto",
                 buffers: int = 4):
        self.device, self.fd, self._maps = device, -1, []
        self.corrupt_frames = 0
        self.lores_size = (int(lores_size[0]), int(lores_size[1]))
        try:
            self.fd = _open_node(device)
        except OSError as exc:
            raise _open_error(device, exc) from None
        try:
            self.device_info = self._query()
            self.mode = self._negotiate(self._formats(), pixel_format, main_size, fps)
            self._start(max(2, min(int(buffers), 32)))
        except OSError as exc:
            self.close()
            raise _open_error(device, exc) from None
        except CameraUnavailable:
            self.close()
            raise
        self.info = CameraInfo("v4l2", self.mode.size, self.lores_size, self.mode.fps)

    # ---- set-up
    def _query(self) -> DeviceInfo:
        cap = V4l2Capability()
        _ioctl(self.fd, VIDIOC_QUERYCAP, cap)
        info = parse_capability(self.device, cap)
        if not info.can_capture:
            raise CameraUnavailable(f"{self.device} ({info.card}) is not a streaming capture "
                                    "device (a metadata or output node?)")
        return info

    def _formats(self) -> list[FormatDesc]:
        offered, index = [], 0
        while index < 64:
            desc = V4l2FmtDesc(index=index, type=BUF_TYPE_VIDEO_CAPTURE)
            try:
                _ioctl(self.fd, VIDIOC_ENUM_FMT, desc)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    break
                raise
            offered.append(parse_fmtdesc(desc))
            index += 1
        return offered

    def _negotiate(self, offered: list[FormatDesc], want: str, size, fps: float) -> _Negotiated:
        """The format to stream.  ``auto`` takes YUYV unless the camera cannot deliver the
        requested rate in it at this size (USB 2 cameras: 1280x720 YUYV at ~10 frames/s) and
        MJPEG can do better; an explicit format is taken as it is."""
        code = choose_format(offered, want, self.device)
        mode = self._set_format(code, size, fps)
        if want.lower() != "auto" or code != "YUYV" or mode.fps >= 0.9 * fps \
                or "MJPG" not in [f.fourcc for f in offered]:
            return mode
        mjpeg = self._set_format("MJPG", size, fps)
        return mjpeg if mjpeg.fps > mode.fps else self._set_format("YUYV", size, fps)

    def _set_format(self, code: str, size, fps: float) -> _Negotiated:
        fmt = V4l2Format(type=BUF_TYPE_VIDEO_CAPTURE)
        fmt.fmt.pix.width, fmt.fmt.pix.height = int(size[0]), int(size[1])
        fmt.fmt.pix.pixelformat = fourcc(code)
        fmt.fmt.pix.field = FIELD_NONE
        _ioctl(self.fd, VIDIOC_S_FMT, fmt)
        pix = fmt.fmt.pix
        got = fourcc_str(pix.pixelformat)
        if got != code:
            raise CameraUnavailable(f"{self.device} refused {code} (gave {got})")
        if pix.width % 2 or pix.height % 2:
            raise CameraUnavailable(f"{self.device} gave an odd size {pix.width}x{pix.height}")
        parm = V4l2StreamParm(type=BUF_TYPE_VIDEO_CAPTURE)
        parm.parm.capture.timeperframe = V4l2Fract(1000, max(1, int(round(fps * 1000))))
        try:
            _ioctl(self.fd, VIDIOC_S_PARM, parm)
            tpf = parm.parm.capture.timeperframe
            fps = tpf.denominator / tpf.numerator if tpf.numerator else fps
        except OSError:
            pass                                   # fixed-rate drivers: keep the request
        return _Negotiated(code, (pix.width, pix.height), pix.bytesperline, float(fps))

    def _start(self, count: int) -> None:
        req = V4l2RequestBuffers(count=count, type=BUF_TYPE_VIDEO_CAPTURE, memory=MEMORY_MMAP)
        _ioctl(self.fd, VIDIOC_REQBUFS, req)
        if req.count < 2:
            raise CameraUnavailable(f"{self.device}: the driver granted {req.count} buffer(s)")
        for index in range(req.count):
            buf = V4l2Buffer(index=index, type=BUF_TYPE_VIDEO_CAPTURE, memory=MEMORY_MMAP)
            _ioctl(self.fd, VIDIOC_QUERYBUF, buf)
            self._maps.append(mmap.mmap(self.fd, buf.length, mmap.MAP_SHARED,
                                        mmap.PROT_READ | mmap.PROT_WRITE, offset=buf.m.offset))
            _ioctl(self.fd, VIDIOC_QBUF, buf)
        _ioctl(self.fd, VIDIOC_STREAMON, ctypes.c_int(BUF_TYPE_VIDEO_CAPTURE))
        self._streaming = True

    # ---- capture
    def _dequeue(self, timeout_s: float) -> V4l2Buffer | None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout_s * 1000))):
            return None
        buf = V4l2Buffer(type=BUF_TYPE_VIDEO_CAPTURE, memory=MEMORY_MMAP)
        try:
            _ioctl(self.fd, VIDIOC_DQBUF, buf)
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return None
            raise CameraIOError(f"{self.device}: capture failed: {exc.strerror} "
                                "(camera unplugged?)") from exc
        return buf

    def _convert(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        if self.mode.fourcc == "YUYV":
            return yuyv_to_streams(data, self.mode.size, self.lores_size, self.mode.bytesperline)
        return mjpeg_to_streams(data, self.mode.size, self.lores_size)

    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        """Next frame, or None when none came within ``timeout_s`` seconds; a corrupt frame
        (bad MJPEG, driver error flag) is counted in ``corrupt_frames`` and skipped."""
        if self.fd < 0:
            raise CameraIOError(f"{self.device} is closed")
        deadline = time.monotonic() + timeout_s
        while True:
            buf = self._dequeue(deadline - time.monotonic())
            if buf is None:
                return None
            data = bytes(self._maps[buf.index][:buf.bytesused])
            now = time.monotonic()
            _ioctl(self.fd, VIDIOC_QBUF, buf)
            try:
                if buf.flags & BUF_FLAG_ERROR:
                    raise CameraIOError("the driver flagged the buffer as damaged")
                main, lores = self._convert(data)
            except CameraIOError:
                self.corrupt_frames += 1
                if time.monotonic() >= deadline:
                    return None
                continue
            monotonic = buf.flags & BUF_FLAG_TIMESTAMP_MASK == BUF_FLAG_TIMESTAMP_MONOTONIC
            t = buf.timestamp.tv_sec + buf.timestamp.tv_usec / 1e6 if monotonic else now
            return Frame(buf.sequence, t, main, lores)

    def close(self) -> None:
        """Stop streaming, unmap the buffers and close the node (idempotent)."""
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        if getattr(self, "_streaming", False):
            try:
                _ioctl(fd, VIDIOC_STREAMOFF, ctypes.c_int(BUF_TYPE_VIDEO_CAPTURE))
            except OSError:
                pass
            self._streaming = False
        for m in self._maps:
            m.close()
        self._maps = []
        os.close(fd)
