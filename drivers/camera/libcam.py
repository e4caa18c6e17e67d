"""libcamera backend: the Pi CSI camera (or any libcamera camera) through the plain libcamera
Python bindings, without picamera2.

Debian has no picamera2; bookworm-backports has libcamera 0.3.2 with ``python3-libcamera``
(built for Python 3.11) and the Pi IPA (``libcamera-ipa``): docs/images.md, "Cameras".  That
package installs the module in ``/usr/lib/<multiarch>/python3.11/site-packages``, which is on
no interpreter's ``sys.path`` (not even Debian's ``/usr/bin/python3``): :func:`import_libcamera`
looks there (and in ``$STOREEDGE_LIBCAMERA_PATH``, ``:``-separated) when a plain import fails.

Nothing is imported until the backend is opened (``open_camera("libcamera")``).  A camera is
configured with a YUV420 main stream at ``main_size`` (its Y plane is ``Frame.main``) and, when
the pipeline offers a second output (the Pi ISP does), a YUV420 lores stream at
``lores_size``; otherwise the lores I420 is box-scaled from the main stream, as the V4L2
backend does.  Buffers come from a ``FrameBufferAllocator`` and are mmapped once; rows are
copied out honouring the stride.  ``Frame.t`` is the request's ``SensorTimestamp`` (ns, start
of exposure; the buffer's own timestamp when the pipeline gives none), in seconds.
"""
from __future__ import annotations

import collections
import importlib
import mmap
import os
import selectors
import sys
import time
from typing import NamedTuple

import numpy as np

from storeedge.drivers.camera.base import Camera, CameraInfo, Frame
from storeedge.drivers.camera.exc import CameraIOError, CameraUnavailable
from storeedge.drivers.camera.v4l2 import _box, pack_i420

ENV_PATH = "STOREEDGE_LIBCAMERA_PATH"
INSTALL_HINT = ("python3-libcamera not installed (apt-get install -t bookworm-backports "
                "python3-libcamera libcamera-ipa; docs/images.md, Cameras)")


# --------------------------------------------------------------------------- the module

def _multiarch() -> str:
    """The Debian multiarch triplet of this interpreter (``aarch64-linux-gnu``...)."""
    triplet = getattr(sys.implementation, "_multiarch", "")
    return triplet or f"{os.uname().machine}-linux-gnu"


def search_dirs() -> list[str]:
    """Where python3-libcamera may live when ``import libcamera`` fails: the directories of
    ``$STOREEDGE_LIBCAMERA_PATH``, then Debian's ``/usr/lib/<multiarch>/python3.X/site-packages``
    (bookworm-backports 0.3.2) and ``/usr/lib/python3/dist-packages``."""
    extra = [d for d in os.environ.get(ENV_PATH, "").split(":") if d]
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return extra + [f"/usr/lib/{_multiarch()}/{ver}/site-packages",
                    "/usr/lib/python3/dist-packages"]


def import_libcamera():
    """The ``libcamera`` module, or :class:`CameraUnavailable` saying why it is missing or
    does not load (a missing ``libcamera.so``, a wrong Python ABI...)."""
    try:
        return importlib.import_module("libcamera")
    except ImportError as exc:
        first = exc
    for folder in search_dirs():
        if not os.path.isfile(os.path.join(folder, "libcamera", "__init__.py")):
            continue
        if folder not in sys.path:
            sys.path.append(folder)
        try:
            return importlib.import_module("libcamera")
        except ImportError as exc:
            raise CameraUnavailable(f"python3-libcamera in {folder} does not load: {exc}") \
                from exc
    if getattr(first, "name", None) not in (None, "libcamera"):
        raise CameraUnavailable(f"the libcamera module does not load: {first}") from first
    raise CameraUnavailable(INSTALL_HINT) from first


class ProbeResult(NamedTuple):
    """What :func:`probe` found: the libcamera version and the cameras' ids."""

    version: str
    cameras: tuple[str, ...]

    def describe(self) -> str:
        """One line for the image self-test: ``loads (v0.3.2); cameras: 1 (/base/...)``."""
        listed = f" ({', '.join(self.cameras)})" if self.cameras else ""
        return f"loads ({self.version}); cameras: {len(self.cameras)}{listed}"


def probe() -> ProbeResult:
    """Import libcamera and list its cameras (no camera is acquired); raises
    :class:`CameraUnavailable` when the module is missing or the manager does not start."""
    lc = import_libcamera()
    try:
        manager = lc.CameraManager.singleton()
        return ProbeResult(str(manager.version), tuple(str(c.id) for c in manager.cameras))
    except (RuntimeError, OSError) as exc:
        raise CameraUnavailable(f"libcamera's camera manager does not start: {exc}") from exc


# --------------------------------------------------------------------------- conversion

class PlaneSpec(NamedTuple):
    """Where one plane lies in its dmabuf: byte ``offset`` and ``length``, and its fd."""

    fd: int
    offset: int
    length: int


def yuv420_plane_specs(planes: list[PlaneSpec], stride: int, height: int) -> list[PlaneSpec]:
    """The three planes (Y, U, V) of a YUV420 buffer: as given when the pipeline lists three,
    derived from the one plane's offset when it lists one (Y then U then V back to back, the
    chroma stride ``stride // 2``, ``height // 2`` rows).  ``stride`` in bytes, ``height`` px."""
    if len(planes) == 3:
        return list(planes)
    if len(planes) != 1:
        raise CameraIOError(f"a YUV420 buffer has 1 or 3 planes, not {len(planes)}")
    fd, offset, length = planes[0]
    y_len, c_len = stride * height, (stride // 2) * (height // 2)
    if y_len + 2 * c_len > length:
        raise CameraIOError(f"YUV420 buffer of {length} bytes is too short for stride {stride}"
                            f" x {height} rows ({y_len + 2 * c_len} bytes)")
    return [PlaneSpec(fd, offset, y_len), PlaneSpec(fd, offset + y_len, c_len),
            PlaneSpec(fd, offset + y_len + c_len, c_len)]


def plane_rows(buf, width: int, height: int, stride: int) -> np.ndarray:
    """A strided 8-bit plane -> contiguous uint8 (height, width); ``width`` px of each row of
    ``stride`` bytes (the last row may end right after its pixels)."""
    if stride < width:
        raise CameraIOError(f"stride {stride} bytes is less than the width {width} px")
    data = np.frombuffer(buf, np.uint8)
    need = stride * (height - 1) + width
    if data.size < need:
        raise CameraIOError(f"short plane: {data.size} bytes, {width}x{height} at stride "
                            f"{stride} needs {need}")
    if data.size >= stride * height:                 # the usual case: a plain reshape
        return data[:stride * height].reshape(height, stride)[:, :width].copy()
    view = np.lib.stride_tricks.as_strided(data, (height, width), (stride, 1), writeable=False)
    return np.array(view, copy=True)


def yuv420_to_i420(planes, size: tuple[int, int], stride: int) -> np.ndarray:
    """Y, U, V plane buffers of a YUV420 frame of ``size`` = (w, h) px (Y stride ``stride``
    bytes, chroma stride ``stride // 2``) -> packed I420 uint8 (h * 3 // 2, w)."""
    w, h = size
    y, u, v = planes
    return pack_i420(plane_rows(y, w, h, stride), plane_rows(u, w // 2, h // 2, stride // 2),
                     plane_rows(v, w // 2, h // 2, stride // 2))


def box_scale(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One 8-bit plane scaled to ``size`` = (w, h) px with a box filter: Pillow's ``reduce``
    when both factors are whole numbers (the same mean of each block, within 1 gray level of
    the BOX resize, 3-4x faster), else its BOX resize."""
    from PIL import Image

    h, w = plane.shape
    if w % size[0] == 0 and h % size[1] == 0 and (w, h) != tuple(size):
        return np.asarray(Image.fromarray(plane).reduce((w // size[0], h // size[1])))
    return _box(plane, size)


def i420_scaled(main_planes, size: tuple[int, int], stride: int,
                lores_size: tuple[int, int], luma: np.ndarray | None = None) -> np.ndarray:
    """The lores I420 of ``lores_size`` (w, h) px box-scaled from a main YUV420 frame (when
    the pipeline has no second output); ``luma``: the main Y plane already copied out."""
    w, h = size
    lw, lh = lores_size
    y, u, v = main_planes
    half = (lw // 2, lh // 2)
    luma = plane_rows(y, w, h, stride) if luma is None else luma
    return pack_i420(box_scale(luma, (lw, lh)),
                     box_scale(plane_rows(u, w // 2, h // 2, stride // 2), half),
                     box_scale(plane_rows(v, w // 2, h // 2, stride // 2), half))


# --------------------------------------------------------------------------- buffers

class MappedBuffer:
    """One FrameBuffer's planes mapped once (each dmabuf fd mapped from 0 to its last plane's
    end), as read-only memoryviews in Y, U, V order."""

    def __init__(self, specs: list[PlaneSpec]):
        ends: dict[int, int] = {}
        for spec in specs:
            ends[spec.fd] = max(ends.get(spec.fd, 0), spec.offset + spec.length)
        self._maps = {fd: mmap.mmap(fd, end, mmap.MAP_SHARED, mmap.PROT_READ)
                      for fd, end in ends.items()}
        self.planes = [memoryview(self._maps[s.fd])[s.offset:s.offset + s.length]
                       for s in specs]

    def close(self) -> None:
        for view in self.planes:
            view.release()
        self.planes = []
        for m in self._maps.values():
            m.close()
        self._maps = {}


class StreamSetup(NamedTuple):
    """A configured stream: libcamera's Stream, its size (w, h) px and Y stride (bytes)."""

    stream: object
    size: tuple[int, int]
    stride: int


def _size(cfg) -> tuple[int, int]:
    return int(cfg.size.width), int(cfg.size.height)


def _check_main(cfg, lc, want: tuple[int, int], cam_id: str) -> None:
    """Main stream as asked (YUV420 at ``want``), else a one-line error naming what the
    pipeline adjusted it to."""
    got = _size(cfg)
    if got != tuple(want) or str(cfg.pixel_format) != str(lc.formats.YUV420):
        raise CameraUnavailable(
            f"camera {cam_id} cannot deliver {want[0]}x{want[1]} YUV420 (libcamera offers "
            f"{got[0]}x{got[1]} {cfg.pixel_format}); set camera.main_width/main_height to a "
            f"size the sensor offers")


def _set_stream(cfg, lc, size: tuple[int, int], buffers: int) -> None:
    cfg.pixel_format = lc.formats.YUV420
    cfg.size = lc.Size(int(size[0]), int(size[1]))
    cfg.buffer_count = buffers


def configure(lc, cam, sizes: tuple, buffers: int, want_lores: bool):
    """Generate and validate the configuration: (main, lores or None) stream configs.

    ``sizes`` = (main (w, h), lores (w, h)) px.  The lores stream is kept only when the
    pipeline takes it as asked (YUV420 at that size); the main stream must be exactly as
    asked, else :class:`CameraUnavailable`."""
    main_size, lores_size = sizes
    Status = lc.CameraConfiguration.Status
    if want_lores:
        config = cam.generate_configuration([lc.StreamRole.VideoRecording,
                                             lc.StreamRole.Viewfinder])
        if config is not None and config.size == 2:
            _set_stream(config.at(0), lc, main_size, buffers)
            _set_stream(config.at(1), lc, lores_size, buffers)
            status = config.validate()
            lores = config.at(1)
            if status != Status.Invalid and _size(lores) == tuple(lores_size) \
                    and str(lores.pixel_format) == str(lc.formats.YUV420):
                _check_main(config.at(0), lc, main_size, str(cam.id))
                return config, config.at(0), lores
    config = cam.generate_configuration([lc.StreamRole.VideoRecording])
    if config is None or config.size < 1:
        raise CameraUnavailable(f"camera {cam.id} offers no video stream")
    _set_stream(config.at(0), lc, main_size, buffers)
    if config.validate() == Status.Invalid:
        raise CameraUnavailable(f"camera {cam.id} rejects a {main_size[0]}x{main_size[1]} "
                                "YUV420 stream")
    _check_main(config.at(0), lc, main_size, str(cam.id))
    return config, config.at(0), None


def _plane_specs(framebuffer) -> list[PlaneSpec]:
    return [PlaneSpec(int(p.fd), int(p.offset), int(p.length)) for p in framebuffer.planes]


def _sensor_timestamp_ns(request, framebuffer) -> int:
    """The request's SensorTimestamp (ns), else the buffer's timestamp (ns)."""
    for control, value in request.metadata.items():
        if getattr(control, "name", control) == "SensorTimestamp":
            return int(value)
    return int(framebuffer.metadata.timestamp)


class LibcameraCamera(Camera):
    """A libcamera camera (the Pi CSI camera on the checkout image).

    Args:
        main_size: (w, h) px of the main YUV420 stream (its Y plane is ``Frame.main``); the
            sensor pipeline must offer it exactly, else :class:`CameraUnavailable`.
        lores_size: (w, h) px of the lores I420 stream (even): a second ISP output when the
            pipeline has one, else box-scaled from the main stream.
        fps: frames per second (FrameDurationLimits, when the camera has that control).
        camera_num: index in libcamera's camera list.
        buffers: frame buffers per stream (2..16).
        lores_stream: ask the pipeline for a second output (False: always scale in software).
    """

    def __init__(self, *, main_size=(1920, 1080), lores_size=(320, 180), fps: float = 30.0,
                 camera_num: int = 0, buffers: int = 4, lores_stream: bool = True):
        self.cam = None
        self._mapped: dict = {}
        self._buffers: dict = {}
        self._ready: collections.deque = collections.deque()
        self.corrupt_frames = 0
        main_size, lores_size = _even(main_size), _even(lores_size)
        lc = import_libcamera()
        self.lc, self.manager = lc, self._manager(lc)
        self.cam = self._acquire(camera_num)
        try:
            self._start(main_size, lores_size, fps, max(2, min(int(buffers), 16)), lores_stream)
        except CameraUnavailable:
            self.close()
            raise
        except (RuntimeError, OSError, ValueError) as exc:
            self.close()
            raise CameraUnavailable(f"cannot start camera {self.cam_id}: {exc}") from exc
        self.info = CameraInfo("libcamera", main_size, lores_size, float(fps))

    # ---- set-up
    @staticmethod
    def _manager(lc):
        try:
            return lc.CameraManager.singleton()
        except (RuntimeError, OSError) as exc:
            raise CameraUnavailable(f"libcamera's camera manager does not start: {exc}") \
                from exc

    def _acquire(self, camera_num: int):
        cameras = list(self.manager.cameras)
        if not cameras:
            raise CameraUnavailable(
                "no libcamera camera found (is the sensor connected, its dtoverlay in "
                "config.txt, and is the kernel one with the unicam and ISP drivers? "
                "docs/images.md, Cameras)")
        if not 0 <= camera_num < len(cameras):
            raise CameraUnavailable(f"libcamera camera {camera_num} does not exist; found "
                                    f"{len(cameras)}: {', '.join(str(c.id) for c in cameras)}")
        cam = cameras[camera_num]
        self.cam_id = str(cam.id)
        try:
            cam.acquire()
        except (RuntimeError, OSError) as exc:
            raise CameraUnavailable(f"camera {self.cam_id} is busy (another process has "
                                    f"it: {exc})") from exc
        return cam

    def _start(self, main_size, lores_size, fps: float, buffers: int, want_lores: bool):
        lc, cam = self.lc, self.cam
        config, main_cfg, lores_cfg = configure(lc, cam, (main_size, lores_size), buffers,
                                                want_lores)
        cam.configure(config)
        self.main = StreamSetup(main_cfg.stream, main_size, int(main_cfg.stride))
        self.lores = None if lores_cfg is None else \
            StreamSetup(lores_cfg.stream, lores_size, int(lores_cfg.stride))
        self.allocator = lc.FrameBufferAllocator(cam)
        streams = {n: s for n, s in (("main", self.main), ("lores", self.lores)) if s}
        counts = []
        for setup in streams.values():
            if self.allocator.allocate(setup.stream) <= 0:
                raise CameraUnavailable(f"camera {self.cam_id}: no frame buffers allocated")
            counts.append(len(self.allocator.buffers(setup.stream)))
        self.requests = [self._request(i, streams) for i in range(min(counts))]
        us = int(round(1_000_000 / fps))
        cam.start({c: (us, us) for c in cam.controls
                   if getattr(c, "name", "") == "FrameDurationLimits"})
        self._started = True
        for request in self.requests:
            cam.queue_request(request)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.manager.event_fd, selectors.EVENT_READ)

    def _request(self, index: int, streams: dict[str, StreamSetup]):
        """Request ``index`` (its cookie) with buffer ``index`` of each stream, mapped."""
        request = self.cam.create_request(index)
        for name, setup in streams.items():
            fb = self.allocator.buffers(setup.stream)[index]
            request.add_buffer(setup.stream, fb)
            specs = yuv420_plane_specs(_plane_specs(fb), setup.stride, setup.size[1])
            self._buffers[(name, index)] = fb
            self._mapped[(name, index)] = MappedBuffer(specs)
        return request

    # ---- capture
    def _next_request(self, deadline: float):
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            self._ready.extend(self.manager.get_ready_requests())
        return self._ready.popleft()

    def _convert(self, request) -> tuple[np.ndarray, np.ndarray]:
        index = request.cookie
        main = self._mapped[("main", index)].planes
        w, h = self.main.size
        luma = plane_rows(main[0], w, h, self.main.stride)
        if self.lores is None:
            return luma, i420_scaled(main, self.main.size, self.main.stride,
                                     self.info.lores_size, luma)
        lores = self._mapped[("lores", index)].planes
        return luma, yuv420_to_i420(lores, self.lores.size, self.lores.stride)

    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        """Next frame, or None when none completed within ``timeout_s`` seconds; a request
        the pipeline completes with an error, or whose planes are short, is counted in
        ``corrupt_frames`` and skipped."""
        if self.cam is None:
            raise CameraIOError("the libcamera camera is closed")
        deadline = time.monotonic() + timeout_s
        while True:
            request = self._next_request(deadline)
            if request is None:
                return None
            if request.status != self.lc.Request.Status.Complete:
                continue                      # cancelled: the camera is stopping
            fb = self._buffers[("main", request.cookie)]
            frame = None
            try:
                if fb.metadata.status == self.lc.FrameMetadata.Status.Success:
                    frame = Frame(int(fb.metadata.sequence),
                                  _sensor_timestamp_ns(request, fb) / 1e9, *self._convert(request))
            except CameraIOError:
                pass                                  # a plane shorter than its stride says
            finally:
                request.reuse()
                self.cam.queue_request(request)
            if frame is not None:
                return frame
            self.corrupt_frames += 1

    def close(self) -> None:
        """Stop the camera, unmap and free the buffers, release the camera (idempotent)."""
        cam, self.cam = self.cam, None
        if cam is None:
            return
        if getattr(self, "_started", False):
            try:
                cam.stop()
            except RuntimeError:
                pass
            self._started = False
        if getattr(self, "selector", None) is not None:
            self.selector.close()
        for mapped in self._mapped.values():
            mapped.close()
        self._mapped, self._buffers, self.requests = {}, {}, []
        self._ready = collections.deque()
        self.allocator = None
        try:
            cam.release()
        except RuntimeError:
            pass


def _even(size) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if w % 2 or h % 2 or w <= 0 or h <= 0:
        raise CameraUnavailable(f"a YUV420 stream needs an even size, not {w}x{h}")
    return w, h
