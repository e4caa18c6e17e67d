"""Detection stage, chosen by config ``detector.type``: ``litert`` (palm detector on a LiteRT
interpreter) or ``none`` (no model)."""
from __future__ import annotations

from storeedge.firmware.checkout.detector.base import Detection, Detector, NoDetector


def make_detector(cfg) -> Detector:
    """Build the detector named by ``cfg.type`` (a DetectorSection)."""
    if cfg.type == "none":
        return NoDetector()
    if cfg.type == "litert":
        from storeedge.firmware.checkout.detector.litert import LiteRTPalmDetector

        return LiteRTPalmDetector(cfg.model_path, min_score=cfg.min_score,
                                  threads=cfg.threads, edgetpu=cfg.edgetpu)
    raise ValueError(f"unknown detector type {cfg.type!r}")


__all__ = ["Detection", "Detector", "NoDetector", "make_detector"]
