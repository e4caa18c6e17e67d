"""SSD anchor generation, box decoding and weighted NMS as MediaPipe's calculators do them.

Follows MediaPipe's ``SsdAnchorsCalculator`` (fixed-size anchors) and
``TensorsToDetectionsCalculator`` (sigmoid scores, centre/size offsets scaled by the input
size, keypoints relative to the anchor) plus ``NonMaxSuppressionCalculator`` in WEIGHTED mode.
All coordinates are normalised to the model input (0..1).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class AnchorSpec(NamedTuple):
    """Anchor options (MediaPipe names); sizes in model input pixels."""

    input_size: int
    strides: tuple[int, ...]
    offset: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0


PALM_LITE = AnchorSpec(192, (8, 16, 16, 16))


def ssd_anchors(spec: AnchorSpec) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in 0..1, in MediaPipe's order (fixed anchor size).

    Layers with the same stride are merged; each grid cell gets one anchor per aspect ratio
    plus one for the interpolated scale, per merged layer.
    """
    out = []
    i = 0
    n = len(spec.strides)
    while i < n:
        per_cell = 0
        j = i
        while j < n and spec.strides[j] == spec.strides[i]:
            per_cell += len(spec.aspect_ratios) + (spec.interpolated_scale_aspect_ratio > 0)
            j += 1
        fm = int(np.ceil(spec.input_size / spec.strides[i]))
        ys, xs = np.mgrid[0:fm, 0:fm]
        centres = np.stack([(xs + spec.offset) / fm, (ys + spec.offset) / fm], -1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


class Decoded(NamedTuple):
    """Decoded candidates: boxes (K, 4) as x0, y0, x1, y1 (0..1), scores (K,), keypoints
    (K, P, 2) in 0..1."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
           input_size: int, min_score: float, clip: float = 100.0) -> Decoded:
    """Decode raw SSD outputs (N, 4 + 2P) and logits (N,) against ``anchors`` (N, 2)."""
    logits = np.clip(raw_scores.reshape(-1), -clip, clip)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = np.nonzero(scores >= min_score)[0]
    r = raw_boxes[keep] / float(input_size)
    a = anchors[keep]
    cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    kp = r[:, 4:].reshape(len(keep), (raw_boxes.shape[1] - 4) // 2, 2) + a[:, None, :]
    return Decoded(boxes, scores[keep], kp)


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with boxes (K, 4)."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(d: Decoded, iou_threshold: float = 0.3, max_out: int = 8) -> Decoded:
    """MediaPipe WEIGHTED non-max suppression: overlapping candidates are averaged (weighted
    by score) into the best one; the best score is kept."""
    order = np.argsort(-d.scores, kind="stable")
    remaining = list(order)
    boxes, scores, kps = [], [], []
    while remaining and len(boxes) < max_out:
        best = remaining[0]
        ov = iou(d.boxes[best], d.boxes[remaining])
        group = [remaining[k] for k in np.nonzero(ov > iou_threshold)[0]]
        w = d.scores[group][:, None]
        boxes.append((d.boxes[group] * w).sum(0) / w.sum())
        kps.append((d.keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        scores.append(d.scores[best])
        remaining = [r for r in remaining if r not in group]
    if not boxes:
        return Decoded(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                       d.keypoints[:0])
    return Decoded(np.array(boxes), np.array(scores), np.array(kps))
