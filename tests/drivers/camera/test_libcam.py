"""libcamera backend (drivers/camera/libcam.py): lazy import and its errors, config and
factory, plane conversion with strides, and the capture loop against a stand-in for the
``libcamera`` bindings.

There is no CSI sensor here.  ``FakeLibcamera`` stands in for python3-libcamera 0.3.2 (the
same names: CameraManager.singleton, event_fd, get_ready_requests, generate_configuration,
CameraConfiguration.Status, FrameBufferAllocator, FrameBuffer.planes with fd/offset/length,
Request.cookie/reuse/metadata) with real kernel objects underneath: each frame buffer is a
memfd holding the three YUV420 planes at offsets with padded strides, as the Pi's dmabufs do,
and completions are signalled on a real eventfd.  The real module, when it is installed, is
exercised by ``test_real_libcamera_probe`` (zero cameras on a machine without a sensor).
"""
from __future__ import annotations

import os
import subprocess
import sys
import types

import numpy as np
import pytest

from storeedge.config import ConfigError, config_from_dict
from storeedge.drivers.camera import CameraUnavailable, i420_from_rgb, open_camera, self_test
from storeedge.drivers.camera import libcam
from storeedge.drivers.camera.exc import CameraIOError
from storeedge.drivers.camera.v4l2 import _box, pack_i420


# --------------------------------------------------------------------------- test pictures

def picture(w: int, h: int, seq: int) -> np.ndarray:
    """An RGB test card that changes with ``seq`` (gradients plus a moving block)."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)),
                    np.full_like(xx, (seq * 37) % 256)], axis=-1).astype(np.uint8)
    x0 = (seq * 8) % max(w - 16, 1)
    rgb[h // 4:h // 4 + 16, x0:x0 + 16] = (250, 250, 250)
    return rgb


def write_yuv420(i420: np.ndarray, size, stride: int) -> tuple[bytes, list[int], list[int]]:
    """Packed I420 -> (bytes with padded rows, plane offsets, plane lengths)."""
    w, h = size
    y = i420[:h]
    flat = i420.reshape(-1)
    c = (w // 2) * (h // 2)
    u = flat[w * h:w * h + c].reshape(h // 2, w // 2)
    v = flat[w * h + c:].reshape(h // 2, w // 2)
    out, offsets, lengths = bytearray(), [], []
    for plane, pstride in ((y, stride), (u, stride // 2), (v, stride // 2)):
        padded = np.full((plane.shape[0], pstride), 0xEE, np.uint8)   # padding is garbage
        padded[:, :plane.shape[1]] = plane
        offsets.append(len(out))
        lengths.append(padded.size)
        out += padded.tobytes()
    return bytes(out), offsets, lengths


# --------------------------------------------------------------------------- the stand-in

class FakeLibcamera:
    """A ``libcamera`` module double: one sensor that offers ``sizes`` (w, h) for the main
    stream and, when ``second_output``, a second YUV420 output."""

    def __init__(self, *, cameras=1, sizes=((640, 480), (1280, 720)), second_output=True,
                 pad=64, busy=False, error_every=0, short_luma=False):
        lib = self
        self.opts = types.SimpleNamespace(sizes=sizes, second=second_output, pad=pad,
                                          busy=busy, error_every=error_every,
                                          short_luma=short_luma)
        self.formats = types.SimpleNamespace(YUV420="YUV420", NV12="NV12")
        self.StreamRole = types.SimpleNamespace(Raw=0, StillCapture=1, VideoRecording=2,
                                                Viewfinder=3)
        self.controls = types.SimpleNamespace(FrameDurationLimits=Ctl("FrameDurationLimits"),
                                              SensorTimestamp=Ctl("SensorTimestamp"))
        status = types.SimpleNamespace(Valid=0, Adjusted=1, Invalid=2)
        self.CameraConfiguration = types.SimpleNamespace(Status=status)
        self.Request = types.SimpleNamespace(Status=types.SimpleNamespace(
            Pending=0, Complete=1, Cancelled=2))
        self.FrameMetadata = types.SimpleNamespace(Status=types.SimpleNamespace(
            Success=0, Error=1, Cancelled=2))
        self.Size = Size
        self.manager = Manager(self, cameras)
        self.CameraManager = types.SimpleNamespace(singleton=lambda: lib.manager)
        self.FrameBufferAllocator = Allocator

    def module(self):
        mod = types.ModuleType("libcamera")
        for name in ("formats", "StreamRole", "controls", "CameraConfiguration", "Request",
                     "FrameMetadata", "Size", "CameraManager", "FrameBufferAllocator"):
            setattr(mod, name, getattr(self, name))
        return mod


class Ctl:
    def __init__(self, name):
        self.name = name


class Size:
    def __init__(self, w, h):
        self.width, self.height = w, h


class StreamCfg:
    def __init__(self, size):
        self.pixel_format, self.size, self.buffer_count = "NV12", Size(*size), 4
        self.stride, self.stream = 0, object()


class Config:
    def __init__(self, lib, roles):
        self.lib, self.roles = lib, roles
        self.cfgs = [StreamCfg(lib.opts.sizes[-1]) for _ in roles]

    @property
    def size(self):
        return len(self.cfgs)

    def at(self, i):
        return self.cfgs[i]

    def validate(self):
        """The sensor's rules: main snaps to the nearest offered size, the second output must
        be no larger than the main one; strides are padded by ``pad`` bytes."""
        status = 0
        for i, cfg in enumerate(self.cfgs):
            want = (cfg.size.width, cfg.size.height)
            if i == 0 and want not in self.lib.opts.sizes:
                near = min(self.lib.opts.sizes, key=lambda s: abs(s[0] - want[0]))
                cfg.size, status = Size(*near), 1
            if i == 1 and want[0] > self.cfgs[0].size.width:
                cfg.size, status = Size(self.cfgs[0].size.width, self.cfgs[0].size.height), 1
            cfg.stride = cfg.size.width + self.lib.opts.pad
        return status


class Plane:
    def __init__(self, fd, offset, length):
        self.fd, self.offset, self.length = fd, offset, length


class Buffer:
    def __init__(self, cfg, index, short_luma=False):
        w, h = cfg.size.width, cfg.size.height
        self.size, self.stride, self.index = (w, h), cfg.stride, index
        self.fd = os.memfd_create(f"fb{index}")
        need = cfg.stride * h + 2 * (cfg.stride // 2) * (h // 2)
        os.ftruncate(self.fd, need)
        _, offsets, lengths = write_yuv420(np.zeros((h * 3 // 2, w), np.uint8), (w, h),
                                           cfg.stride)
        lengths[0] //= 2 if short_luma else 1          # a pipeline that lies about a plane
        self.planes = [Plane(self.fd, o, n) for o, n in zip(offsets, lengths)]
        self.metadata = types.SimpleNamespace(status=0, sequence=0, timestamp=0)

    def fill(self, seq: int) -> None:
        w, h = self.size
        data, _, _ = write_yuv420(i420_from_rgb(picture(w, h, seq)), self.size, self.stride)
        os.pwrite(self.fd, data, 0)


class Allocator:
    def __init__(self, cam):
        self.cam, self.bufs = cam, {}

    def allocate(self, stream):
        cfg = next(c for c in self.cam.config.cfgs if c.stream is stream)
        short = self.cam.lib.opts.short_luma
        self.bufs[stream] = [Buffer(cfg, i, short) for i in range(cfg.buffer_count)]
        self.cam.fds += [b.fd for b in self.bufs[stream]]
        return len(self.bufs[stream])

    def buffers(self, stream):
        return self.bufs[stream]


class Req:
    def __init__(self, cookie):
        self.cookie, self.buffers, self.status, self.metadata = cookie, {}, 0, {}

    def add_buffer(self, stream, fb):
        self.buffers[stream] = fb

    def reuse(self):
        self.status, self.metadata = 0, {}


class Cam:
    def __init__(self, lib, num):
        self.lib, self.id, self.seq = lib, f"/base/soc/i2c0mux/i2c@1/imx708@1a-{num}", 0
        self.controls = {lib.controls.FrameDurationLimits: (33333, 33333)}
        self.acquired = self.started = False
        self.fds, self.config, self.start_controls = [], None, None

    def acquire(self):
        if self.lib.opts.busy:
            raise RuntimeError("Failed to acquire camera")
        self.acquired = True

    def release(self):
        self.acquired = False
        for fd in self.fds:
            os.close(fd)
        self.fds = []

    def generate_configuration(self, roles):
        if len(roles) > 1 and not self.lib.opts.second:
            return None
        self.config = Config(self.lib, roles)
        return self.config

    def configure(self, config):
        assert config.validate() != 2

    def create_request(self, cookie):
        return Req(cookie)

    def start(self, controls):
        self.start_controls, self.started = dict(controls), True

    def stop(self):
        self.started = False

    def queue_request(self, req):
        """Complete the request at once: fill its buffers, stamp it, signal the eventfd."""
        assert self.started and req.status == 0
        self.seq += 1
        bad = self.lib.opts.error_every and self.seq % self.lib.opts.error_every == 0
        for fb in req.buffers.values():
            fb.fill(self.seq)
            fb.metadata = types.SimpleNamespace(status=1 if bad else 0, sequence=self.seq,
                                                timestamp=0)
        req.status = 1
        req.metadata = {self.lib.controls.SensorTimestamp: 5_000_000_000 + self.seq * 33_333_333}
        self.lib.manager.complete(req)


class Manager:
    def __init__(self, lib, cameras):
        self.version = "v0.3.2"
        self.cameras = [Cam(lib, i) for i in range(cameras)]
        self.event_fd = os.eventfd(0, os.EFD_NONBLOCK)
        self.done = []

    def complete(self, req):
        self.done.append(req)
        os.eventfd_write(self.event_fd, 1)

    def get_ready_requests(self):
        os.eventfd_read(self.event_fd)
        done, self.done = self.done, []
        return done


@pytest.fixture
def fake(monkeypatch):
    """Install a FakeLibcamera factory as the ``libcamera`` module; yields the factory."""
    made = []

    def install(**kw):
        lib = FakeLibcamera(**kw)
        monkeypatch.setitem(sys.modules, "libcamera", lib.module())
        made.append(lib)
        return lib

    yield install
    for lib in made:
        os.close(lib.manager.event_fd)


# --------------------------------------------------------------------------- the import

def test_missing_module_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "libcamera", None)       # import libcamera -> ImportError
    monkeypatch.setattr(libcam, "search_dirs", lambda: [str(tmp_path)])
    with pytest.raises(CameraUnavailable, match="python3-libcamera not installed"):
        open_camera("libcamera")


def test_debian_site_packages_dir_is_searched(monkeypatch, tmp_path):
    """bookworm-backports installs the module in /usr/lib/<triplet>/python3.11/site-packages,
    on no sys.path: it is found there; a copy that does not load says where it is."""
    (tmp_path / "good" / "libcamera").mkdir(parents=True)
    (tmp_path / "good" / "libcamera" / "__init__.py").write_text("MARK = 'debian'\n")
    (tmp_path / "bad" / "libcamera").mkdir(parents=True)
    (tmp_path / "bad" / "libcamera" / "__init__.py").write_text(
        "raise ImportError('libcamera.so.0.3: cannot open shared object file')\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "libcamera", raising=False)
    monkeypatch.setenv(libcam.ENV_PATH, f"{tmp_path / 'none'}:{tmp_path / 'bad'}")
    assert libcam.search_dirs()[:2] == [str(tmp_path / "none"), str(tmp_path / "bad")]
    assert any(d.endswith(f"python{sys.version_info.major}.{sys.version_info.minor}"
                          "/site-packages") for d in libcam.search_dirs())
    with pytest.raises(CameraUnavailable, match=r"in .*bad does not load: libcamera\.so"):
        libcam.import_libcamera()
    sys.modules.pop("libcamera", None)
    monkeypatch.setenv(libcam.ENV_PATH, str(tmp_path / "good"))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "bad" not in p])
    assert libcam.import_libcamera().MARK == "debian"
    sys.modules.pop("libcamera", None)


@pytest.mark.skipif(not any(os.path.isfile(os.path.join(d, "libcamera", "__init__.py"))
                            for d in libcam.search_dirs()),
                    reason="python3-libcamera is not installed here (the unit tests above use "
                           "a stand-in; docs/images.md says how the real one was checked)")
def test_real_libcamera_probe():
    """The real bindings, in a fresh interpreter: the manager starts; with no sensor the
    backend says so in one line."""
    code = ("from storeedge.drivers.camera import libcam, open_camera, CameraUnavailable\n"
            "lc = libcam.import_libcamera()\n"          # the names the backend and the stand-in use
            "for obj, names in ((lc.FrameBuffer.Plane, 'fd offset length'),\n"
            "        (lc.FrameBuffer, 'planes metadata'), (lc.FrameMetadata, 'status sequence "
            "timestamp'),\n        (lc.Request, 'cookie reuse metadata status'),\n"
            "        (lc.StreamConfiguration, 'stride stream size pixel_format buffer_count'),\n"
            "        (lc.CameraManager, 'event_fd get_ready_requests cameras version')):\n"
            "    assert all(hasattr(obj, n) for n in names.split()), (obj, names)\n"
            "r = libcam.probe(); print(r.describe())\n"
            "try:\n    open_camera('libcamera')\nexcept CameraUnavailable as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "LIBCAMERA_LOG_LEVELS": "*:ERROR"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("loads (v0.")
    if lines[0].split("cameras: ")[1].startswith("0"):
        assert lines[1].startswith("no libcamera camera found")


# --------------------------------------------------------------------------- config, factory

def test_checkout_config_selects_libcamera(fake):
    from storeedge.firmware.checkout.app import make_camera
    from storeedge.firmware.checkout.config import CheckoutConfig

    fake(sizes=((1280, 720),))
    cfg = config_from_dict({
        "security": {"insecure": True},
        "checkout": {"camera": {"type": "libcamera", "main_width": 1280, "main_height": 720,
                                "lores_width": 320, "lores_height": 180, "fps": 25}}},
        CheckoutConfig)
    with make_camera(cfg.checkout, clock=None) as cam:
        assert isinstance(cam, libcam.LibcameraCamera)
        assert cam.info == ("libcamera", (1280, 720), (320, 180), 25.0)
        assert cam.cam.start_controls[next(iter(cam.cam.controls))] == (40000, 40000)
    with pytest.raises(ConfigError, match="type"):
        config_from_dict({"security": {"insecure": True},
                          "checkout": {"camera": {"type": "libcamera2"}}}, CheckoutConfig)


# --------------------------------------------------------------------------- conversion

def test_plane_rows_honours_stride_and_rejects_short_planes():
    rows = np.arange(6 * 10, dtype=np.uint8).reshape(6, 10)
    assert np.array_equal(libcam.plane_rows(rows.tobytes(), 7, 6, 10), rows[:, :7])
    last_row_unpadded = rows.tobytes()[:10 * 5 + 7]
    assert np.array_equal(libcam.plane_rows(last_row_unpadded, 7, 6, 10), rows[:, :7])
    with pytest.raises(CameraIOError, match="short plane"):
        libcam.plane_rows(rows.tobytes()[:10 * 5 + 6], 7, 6, 10)
    with pytest.raises(CameraIOError, match="stride 6 bytes is less than the width 7"):
        libcam.plane_rows(rows.tobytes(), 7, 6, 6)


@pytest.mark.parametrize("size,pad", [((64, 48), 0), ((62, 46), 34), ((320, 180), 64)])
def test_yuv420_with_padded_strides_gives_exact_i420(size, pad):
    w, h = size
    rng = np.random.default_rng(w + pad)
    i420 = pack_i420(*(rng.integers(0, 256, shape, np.uint8)
                       for shape in ((h, w), (h // 2, w // 2), (h // 2, w // 2))))
    data, offsets, lengths = write_yuv420(i420, size, w + pad)
    planes = [memoryview(data)[o:o + n] for o, n in zip(offsets, lengths)]
    assert np.array_equal(libcam.yuv420_to_i420(planes, size, w + pad), i420)
    assert np.array_equal(libcam.plane_rows(planes[0], w, h, w + pad), i420[:h])
    # one plane listed for the whole buffer: U and V offsets derived from the stride
    specs = libcam.yuv420_plane_specs([libcam.PlaneSpec(3, 4096, len(data))], w + pad, h)
    assert [(s.offset - 4096, s.length) for s in specs] == list(zip(offsets, lengths))
    with pytest.raises(CameraIOError, match="too short"):
        libcam.yuv420_plane_specs([libcam.PlaneSpec(3, 0, len(data) - 1)], w + pad, h)


def block_mean(plane: np.ndarray, size) -> np.ndarray:
    """The exact mean of each block (whole-number factors), rounded half up."""
    (lw, lh), (h, w) = size, plane.shape
    n = (w // lw) * (h // lh)
    sums = plane.reshape(lh, h // lh, lw, w // lw).astype(np.int64).sum(axis=(1, 3))
    return ((sums + n // 2) // n).astype(np.uint8)


@pytest.mark.parametrize("size,lores", [((640, 480), (160, 120)), ((1920, 1080), (320, 180)),
                                        ((642, 480), (320, 180))])
def test_lores_scaled_in_software_is_a_box_filter(size, lores):
    """Whole-number factors: each lores pixel is its block's mean (Pillow's reduce: within 1
    gray level); other factors: Pillow's BOX resize, as the V4L2 backend does."""
    (w, h), stride = size, size[0] + 64
    rng = np.random.default_rng(w)
    y = rng.integers(0, 256, (h, w), np.uint8)
    u, v = (rng.integers(0, 256, (h // 2, w // 2), np.uint8) for _ in range(2))
    data, offsets, lengths = write_yuv420(pack_i420(y, u, v), size, stride)
    planes = [memoryview(data)[o:o + n] for o, n in zip(offsets, lengths)]
    got = libcam.i420_scaled(planes, size, stride, lores)
    half = (lores[0] // 2, lores[1] // 2)
    if w % lores[0] == 0 and h % lores[1] == 0:
        want = pack_i420(block_mean(y, lores), block_mean(u, half), block_mean(v, half))
        assert np.abs(got.astype(int) - want).max() <= 1
    else:
        want = pack_i420(_box(y, lores), _box(u, half), _box(v, half))
        assert np.array_equal(got, want)
    assert np.array_equal(got, libcam.i420_scaled(planes, size, stride, lores,
                                                  libcam.plane_rows(planes[0], w, h, stride)))


# --------------------------------------------------------------------------- capture

def test_two_stream_capture_frames_sequence_and_sensor_time(fake):
    lib = fake(sizes=((640, 480), (1280, 720)), pad=64)
    with open_camera("libcamera", main_size=(640, 480), lores_size=(320, 240), fps=30) as cam:
        assert cam.lores is not None and cam.main.stride == 704 and cam.lores.stride == 384
        frames = [cam.capture(1.0) for _ in range(10)]          # > 4 buffers: requeued
        report = self_test(cam, n_frames=5)
    assert report.ok, report.problems
    for f in frames:
        expect = i420_from_rgb(picture(640, 480, f.seq))
        assert np.array_equal(f.main, expect[:480])
        assert np.array_equal(f.lores, i420_from_rgb(picture(320, 240, f.seq)))
        assert f.t == pytest.approx((5_000_000_000 + f.seq * 33_333_333) / 1e9)
    assert [f.seq for f in frames] == list(range(frames[0].seq, frames[0].seq + 10))
    cam_obj = lib.manager.cameras[0]
    assert not cam_obj.acquired and not cam_obj.started and cam_obj.fds == []


def test_single_output_pipeline_scales_lores_in_software(fake):
    fake(sizes=((640, 480),), second_output=False)
    with open_camera("libcamera", main_size=(640, 480), lores_size=(160, 120)) as cam:
        assert cam.lores is None
        f = cam.capture(1.0)
    main_i420 = i420_from_rgb(picture(640, 480, f.seq))
    data, offsets, lengths = write_yuv420(main_i420, (640, 480), 640)
    planes = [memoryview(data)[o:o + n] for o, n in zip(offsets, lengths)]
    assert np.array_equal(f.lores, libcam.i420_scaled(planes, (640, 480), 640, (160, 120)))


def test_lores_larger_than_main_falls_back_to_software(fake):
    """The second output may not exceed the first: libcamera adjusts it; the backend does
    not take an adjusted lores stream, it scales in software instead."""
    fake(sizes=((320, 240),))
    with open_camera("libcamera", main_size=(320, 240), lores_size=(640, 480)) as cam:
        assert cam.lores is None and cam.capture(1.0).lores.shape == (720, 640)


def test_errored_requests_are_counted_and_skipped(fake):
    fake(sizes=((640, 480),), error_every=3)
    with open_camera("libcamera", main_size=(640, 480), lores_size=(320, 240)) as cam:
        seqs = [cam.capture(1.0).seq for _ in range(6)]
        assert all(s % 3 for s in seqs) and cam.corrupt_frames == 2
    fake(sizes=((640, 480),), short_luma=True)
    with open_camera("libcamera", main_size=(640, 480), lores_size=(320, 240)) as cam:
        assert cam.capture(0.2) is None and cam.corrupt_frames > 0


def test_timeout_returns_none(fake):
    lib = fake(sizes=((640, 480),))
    with open_camera("libcamera", main_size=(640, 480), lores_size=(320, 240)) as cam:
        cam.capture(1.0)
        lib.manager.cameras[0].queue_request = lambda req: None     # the sensor stalls
        got = [cam.capture(0.05) for _ in range(8)]
        assert got[:3] != [None] * 3 and got[-1] is None


@pytest.mark.parametrize("kw,match", [
    ({"cameras": 0}, "no libcamera camera found"),
    ({"busy": True}, "is busy"),
    ({"sizes": ((1280, 720),)}, r"cannot deliver 1920x1080 YUV420 \(libcamera offers "
                                r"1280x720 YUV420\)"),
])
def test_open_errors_are_one_line(fake, kw, match):
    fake(**kw)
    with pytest.raises(CameraUnavailable, match=match):
        open_camera("libcamera", main_size=(1920, 1080))


def test_bad_camera_index_and_odd_size(fake):
    fake(cameras=1)
    with pytest.raises(CameraUnavailable, match=r"camera 2 does not exist; found 1: /base"):
        open_camera("libcamera", main_size=(640, 480), camera_num=2)
    with pytest.raises(CameraUnavailable, match="even size, not 321x240"):
        open_camera("libcamera", main_size=(321, 240))


def test_probe_reports_version_and_cameras(fake):
    fake(cameras=2)
    result = libcam.probe()
    assert result.describe().startswith("loads (v0.3.2); cameras: 2 (/base/soc/")
    fake(cameras=0)
    assert libcam.probe().describe() == "loads (v0.3.2); cameras: 0"
