"""Detector interface: find hands in a region of a lores I420 frame."""
from __future__ import annotations

import abc
from typing import NamedTuple

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

    @abc.abstractmethod
    def detect(self, lores: np.ndarray, roi: tuple[int, int, int, int] | None = None
               ) -> list[Detection]:
        """Detections in ``lores`` (I420 uint8), restricted to ``roi`` (x, y, w, h) px."""

    def close(self) -> None:
        """Release the model."""


class NoDetector(Detector):
    """``type: none``: no model; every foreground blob is a candidate item."""

    name = "none"

    def detect(self, lores, roi=None) -> list[Detection]:
        return []
