"""Detector interface: find hands in a region of a lores I420 frame."""
from __future__ import annotations

import abc
from typing import Callable, NamedTuple

import numpy as np


class Detection(NamedTuple):
    """One detection in lores frame pixels: box (x0, y0, x1, y1), score 0..1, label, and
    keypoints ((x, y), ...) px -- for the palm model 0 is the wrist, 2 the middle-finger
    knuckle."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    label: str
    keypoints: tuple = ()

    @property
    def area(self) -> float:
        """Box area, px^2."""
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


class Detector(abc.ABC):
    """A detection stage chosen by config ``detector.type``."""

    name = "abstract"
    every_frame = False
    """Whether the pipeline asks on every frame (True: no model, nothing to save)."""

    def hands(self, lores: Callable[[], np.ndarray], roi: tuple[int, int, int, int]
              ) -> list[Detection] | None:
        """Hands in ``roi`` (x, y, w, h) px of the frame ``lores()`` makes (called only when
        needed); None when this detector cannot see hands (every mover is then an item)."""
        return self.detect(lores(), roi)

    @abc.abstractmethod
    def detect(self, lores: np.ndarray, roi: tuple[int, int, int, int] | None = None
               ) -> list[Detection]:
        """Detections in ``lores`` (I420 uint8), restricted to ``roi`` (x, y, w, h) px."""

    def close(self) -> None:
        """Release the model."""


class NoDetector(Detector):
    """``type: none``: no model; every foreground blob is a candidate item."""

    name = "none"
    every_frame = True

    def hands(self, lores, roi) -> None:
        """No model: no hands seen, and no frame prepared for one."""
        return None

    def detect(self, lores, roi=None) -> list[Detection]:
        return []
