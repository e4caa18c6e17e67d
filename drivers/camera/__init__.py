"""Camera seam: picamera2 (real), replay (image folder / recording) and a synthetic lane.

Backends are registered by name and chosen by ``open_camera(name, ...)`` or the environment
variable ``STOREEDGE_CAMERA`` (``picamera2``, ``libcamera`` for the Pi CSI camera without
picamera2, ``v4l2`` for USB cameras, ``replay``, ``synthetic``). The simulated ones are
never a silent fallback: a picamera2 that fails to load raises :class:`CameraUnavailable`
saying why.

Self-test (used by the console's ``test camera``)::

    >>> from storeedge.drivers.camera import open_camera, self_test
    >>> report = self_test(open_camera("synthetic", seed=1), n_frames=10)
    >>> report.ok, report.frames, report.main_size
    (True, 10, (960, 540))
"""
from __future__ import annotations

import os
import time
from typing import Callable, NamedTuple

import numpy as np

from storeedge.drivers.camera.base import Camera, CameraInfo, Frame, i420_from_rgb, rgb_from_i420
from storeedge.drivers.camera.exc import (CameraError, CameraIOError, CameraUnavailable,
                                          ReplayError)
from storeedge.drivers.exc import UnknownBackend

ENV = "STOREEDGE_CAMERA"

__all__ = ["Camera", "CameraInfo", "Frame", "CameraError", "CameraIOError", "CameraUnavailable",
           "ReplayError", "open_camera", "register_backend", "self_test", "CameraSelfTest",
           "i420_from_rgb", "rgb_from_i420", "BACKENDS"]


def _picamera2(**kw) -> Camera:
    from storeedge.drivers.camera.picam import PiCamera

    return PiCamera(**kw)


def _v4l2(**kw) -> Camera:
    from storeedge.drivers.camera.v4l2 import V4L2Camera

    return V4L2Camera(**kw)


def _libcamera(**kw) -> Camera:
    from storeedge.drivers.camera.libcam import LibcameraCamera

    return LibcameraCamera(**kw)


def _replay(**kw) -> Camera:
    from storeedge.drivers.camera.replay import ReplayCamera

    return ReplayCamera(**kw)


def _video(**kw) -> Camera:
    from storeedge.drivers.camera.video import VideoReplayCamera

    return VideoReplayCamera(**kw)


def _synthetic(**kw) -> Camera:
    from storeedge.drivers.camera.synthetic import SyntheticLaneCamera, synthetic_camera

    if "script" in kw:
        return SyntheticLaneCamera(kw.pop("script"), **kw)
    return synthetic_camera(**kw)


BACKENDS: dict[str, Callable[..., Camera]] = {
    "picamera2": _picamera2, "libcamera": _libcamera, "v4l2": _v4l2, "replay": _replay,
    "video": _video, "synthetic": _synthetic}


def register_backend(name: str, factory: Callable[..., Camera]) -> None:
    """Add a backend ``name`` whose ``factory(**kwargs)`` returns a :class:`Camera`."""
    BACKENDS[name] = factory


def open_camera(name: str | None = None, **kwargs) -> Camera:
    """Open backend ``name`` (default: ``$STOREEDGE_CAMERA`` or ``picamera2``)."""
    name = name or os.environ.get(ENV, "picamera2")
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise UnknownBackend(f"unknown camera backend {name!r}; known: {sorted(BACKENDS)}") \
            from None
    return factory(**kwargs)


class CameraSelfTest(NamedTuple):
    """Result of :func:`self_test`: fps measured (frames/s), mean luma (0-255), problems."""

    ok: bool
    backend: str
    frames: int
    fps: float
    main_size: tuple[int, int]
    lores_size: tuple[int, int]
    mean_luma: float
    problems: tuple[str, ...]


def self_test(camera: Camera, n_frames: int = 20, timeout_s: float = 2.0) -> CameraSelfTest:
    """Capture ``n_frames`` and check sizes, timestamps and exposure; never raises for a
    stalled or dark camera (those are reported in ``problems``)."""
    problems: list[str] = []
    frames: list[Frame] = []
    start = time.monotonic()
    for _ in range(n_frames):
        f = camera.capture(timeout_s)
        if f is None:
            problems.append(f"no frame within {timeout_s} s")
            break
        frames.append(f)
    elapsed = max(time.monotonic() - start, 1e-9)
    info = camera.info
    for f in frames[:1]:
        if f.main.shape != (info.main_size[1], info.main_size[0]):
            problems.append(f"main stream is {f.main.shape}, expected {info.main_size[::-1]}")
        if f.lores.shape != (info.lores_size[1] * 3 // 2, info.lores_size[0]):
            problems.append(f"lores stream is {f.lores.shape}, not I420 of {info.lores_size}")
    ts = np.array([f.t for f in frames])
    if len(ts) > 1 and np.any(np.diff(ts) <= 0):
        problems.append("frame timestamps do not increase")
    luma = float(np.mean([f.main.mean() for f in frames])) if frames else 0.0
    if frames and not 8.0 <= luma <= 247.0:
        problems.append(f"image too dark or too bright (mean luma {luma:.0f})")
    return CameraSelfTest(not problems, info.backend, len(frames), len(frames) / elapsed,
                          info.main_size, info.lores_size, luma, tuple(problems))
