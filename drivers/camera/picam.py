"""picamera2 backend: main stream (luma, for barcodes) + ISP lores YUV420 (for the model).

picamera2 is imported when the camera is opened, never at module import, so the rest of the
firmware runs on machines without it. Frame timestamps are the sensor's start-of-exposure
time from the request metadata (``SensorTimestamp``, ns, CLOCK_MONOTONIC/BOOTTIME domain).
"""
from __future__ import annotations

import time

import numpy as np

from storeedge.drivers.camera.base import Camera, CameraInfo, Frame
from storeedge.drivers.camera.exc import CameraIOError, CameraUnavailable


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except Exception as exc:     # ImportError, or libcamera failing to load its IPA modules
        raise CameraUnavailable(f"picamera2 backend unavailable: {exc!r} "
                                "(install python3-picamera2 from Raspberry Pi OS)") from exc
    return Picamera2


class PiCamera(Camera):
    """A Raspberry Pi camera through picamera2.

    Args:
        main_size: (w, h) px of the main stream (YUV420; its Y plane is used).
        lores_size: (w, h) px of the lores stream (YUV420, for motion and the model).
        fps: frames per second requested (FrameDurationLimits).
        camera_num: index of the camera.
    """

    def __init__(self, *, main_size=(1920, 1080), lores_size=(320, 180), fps: float = 30.0,
                 camera_num: int = 0):
        picamera2 = _import_picamera2()
        try:
            self.cam = picamera2(camera_num)
            us = int(1_000_000 / fps)
            cfg = self.cam.create_video_configuration(
                main={"size": tuple(main_size), "format": "YUV420"},
                lores={"size": tuple(lores_size), "format": "YUV420"},
                controls={"FrameDurationLimits": (us, us)}, buffer_count=4)
            self.cam.configure(cfg)
            self.cam.start()
        except Exception as exc:
            raise CameraUnavailable(f"cannot open camera {camera_num}: {exc}") from exc
        self._seq = 0
        self.info = CameraInfo("picamera2", tuple(main_size), tuple(lores_size), float(fps))

    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        try:
            job = self.cam.capture_request(wait=False)
            request = self.cam.wait(job, timeout=timeout_s)
        except TimeoutError:
            return None
        except Exception as exc:
            raise CameraIOError(f"capture failed: {exc}") from exc
        if request is None:
            return None
        try:
            h = self.info.main_size[1]
            main = np.array(request.make_array("main")[:h], copy=True)
            lores = np.array(request.make_array("lores"), copy=True)
            ts_ns = request.get_metadata().get("SensorTimestamp", time.monotonic_ns())
        finally:
            request.release()
        self._seq += 1
        return Frame(self._seq, ts_ns / 1e9, main, lores)

    def close(self) -> None:
        cam, self.cam = getattr(self, "cam", None), None
        if cam is not None:
            cam.stop()
            cam.close()
