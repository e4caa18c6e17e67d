"""Camera frames and the backend interface every camera implements."""
from __future__ import annotations

import abc
from typing import Iterator, NamedTuple

import numpy as np


class Frame(NamedTuple):
    """One capture.

    seq: frame number from the backend (gaps mean dropped frames).
    t: sensor timestamp, seconds on the monotonic clock of the device.
    main: full-resolution luma (Y plane), uint8 (H, W): for barcodes and keyframes.
    lores: ISP low-resolution stream, I420 uint8 (h * 3 // 2, w): for motion and the model.
    """

    seq: int
    t: float
    main: np.ndarray
    lores: np.ndarray


class CameraInfo(NamedTuple):
    """What a camera delivers: sizes are (width, height) in pixels, fps in frames/s."""

    backend: str
    main_size: tuple[int, int]
    lores_size: tuple[int, int]
    fps: float


class Camera(abc.ABC):
    """A source of :class:`Frame` objects.

    ``capture(timeout_s)`` returns the next frame or ``None`` when none arrived within the
    timeout (a stalled camera); it never raises for a stall. ``close()`` releases the device.
    """

    info: CameraInfo

    @abc.abstractmethod
    def capture(self, timeout_s: float = 1.0) -> Frame | None:
        """Next frame, or None when no frame came within ``timeout_s`` seconds."""

    def frames(self) -> Iterator[Frame]:
        """Frames until the source ends (replay/synthetic) or forever (live)."""
        while True:
            frame = self.capture()
            if frame is None:
                if self.finished:
                    return
                continue
            yield frame

    @property
    def finished(self) -> bool:
        """True when a finite source has no more frames."""
        return False

    def close(self) -> None:
        """Release the device (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def i420_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (h, w, 3), w even and h a multiple of 4 -> I420 uint8 (h * 3 // 2, w), BT.601 limited range
    (Y 16..235, Cb/Cr 16..240), as libcamera's YUV420 streams deliver."""
    h, w, _ = rgb.shape
    f = rgb.astype(np.float32)
    y = 16.0 + (65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]) / 255.0
    sub = f.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    u = 128.0 + (-37.797 * sub[..., 0] - 74.203 * sub[..., 1] + 112.0 * sub[..., 2]) / 255.0
    v = 128.0 + (112.0 * sub[..., 0] - 93.786 * sub[..., 1] - 18.214 * sub[..., 2]) / 255.0
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = np.clip(y + 0.5, 0, 255)
    out[h:h + h // 4] = np.clip(u + 0.5, 0, 255).reshape(h // 4, w)
    out[h + h // 4:] = np.clip(v + 0.5, 0, 255).reshape(h // 4, w)
    return out


def rgb_from_i420(yuv: np.ndarray) -> np.ndarray:
    """I420 uint8 (h * 3 // 2, w) -> RGB uint8 (h, w, 3), BT.601 limited range, chroma
    replicated (nearest); for keyframes and displays, not for the model input."""
    h = yuv.shape[0] * 2 // 3
    w = yuv.shape[1]
    y = (yuv[:h].astype(np.float32) - 16.0) * (255.0 / 219.0)
    u = yuv[h:h + h // 4].reshape(h // 2, w // 2).astype(np.float32) - 128.0
    v = yuv[h + h // 4:].reshape(h // 2, w // 2).astype(np.float32) - 128.0
    u = u.repeat(2, 0).repeat(2, 1) * (255.0 / 224.0)
    v = v.repeat(2, 0).repeat(2, 1) * (255.0 / 224.0)
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], axis=-1)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
