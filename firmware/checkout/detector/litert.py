"""LiteRT hand detector (``detector.type: litert``): MediaPipe's palm detector on a motion ROI.

Extends :class:`~storeedge.firmware.checkout.detector.base.Detector`. The model
(``palm_detection_lite.tflite``, 192 x 192 RGB float input in 0..1, outputs 2016 x 18 box/
keypoint regressors and 2016 x 1 logits) runs with XNNPACK on the CPU; the Edge TPU delegate
(``libedgetpu.so.1``) is tried when ``edgetpu`` is ``auto`` or ``on``; ``on`` fails loudly
when it is missing, ``auto`` logs and uses the CPU. Pre-processing is one pass of
:func:`storeedge.native.preprocess.preprocess` (crop the ROI from the lores I420 frame,
letterbox, BT.601 to RGB, scale to 0..1); post-processing is SSD anchor decoding and weighted
NMS as in MediaPipe (:mod:`.ssd`).
"""
from __future__ import annotations

import logging
import os

import numpy as np

from storeedge.firmware.checkout.detector.base import Detection, Detector
from storeedge.firmware.checkout.detector.ssd import (PALM_LITE, AnchorSpec, decode,
                                                       ssd_anchors, weighted_nms)
from storeedge.firmware.checkout.exc import ModelError
from storeedge.native.preprocess import preprocess

log = logging.getLogger("storeedge.checkout.detector")
MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models")
DEFAULT_MODEL = os.path.join(MODEL_DIR, "palm_detection_lite.tflite")
EDGETPU_LIB = "libedgetpu.so.1"


def _delegates(edgetpu: str) -> list:
    if edgetpu == "off":
        return []
    import ctypes.util

    from ai_edge_litert.interpreter import load_delegate

    if edgetpu == "auto" and ctypes.util.find_library("edgetpu") is None:
        log.info("no Edge TPU runtime (libedgetpu) installed; detector runs on the CPU (XNNPACK)")
        return []

    try:
        return [load_delegate(EDGETPU_LIB)]
    except (ValueError, OSError, RuntimeError) as exc:
        if edgetpu == "on":
            raise ModelError(f"Edge TPU delegate {EDGETPU_LIB} requested but unavailable: "
                             f"{exc}") from exc
        log.info("Edge TPU not present (%s); running the detector on the CPU (XNNPACK)", exc)
        return []


class LiteRTPalmDetector(Detector):
    """Hand (palm) detector on a LiteRT interpreter.

    Args:
        model_path: .tflite file (default: the packaged palm_detection_lite.tflite).
        min_score: detection threshold, 0..1.
        threads: interpreter threads (1 = one core).
        edgetpu: "auto", "on" or "off".
        spec: anchor options matching the model.
    """

    name = "litert"

    def __init__(self, model_path: str = "", *, min_score: float = 0.5, threads: int = 1,
                 edgetpu: str = "auto", spec: AnchorSpec = PALM_LITE):
        path = model_path or DEFAULT_MODEL
        if not os.path.isfile(path):
            raise ModelError(f"detector model {path} not found; run "
                             "'python -m storeedge.firmware.checkout.models.fetch'")
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interp = Interpreter(model_path=path, num_threads=threads,
                                      experimental_delegates=_delegates(edgetpu) or None)
            self.interp.allocate_tensors()
        except ValueError as exc:
            raise ModelError(f"cannot load detector model {path}: {exc}") from exc
        self.path, self.min_score, self.spec = path, float(min_score), spec
        self._bind()
        self.anchors = ssd_anchors(spec)
        if self.anchors.shape[0] != self.n_anchors:
            raise ModelError(f"model has {self.n_anchors} anchors, options give "
                             f"{self.anchors.shape[0]}")
        self.invocations = 0

    def _bind(self) -> None:
        inp = self.interp.get_input_details()
        if len(inp) != 1 or list(inp[0]["shape"]) != [1, self.spec.input_size,
                                                      self.spec.input_size, 3]:
            raise ModelError(f"unexpected model input {[d['shape'] for d in inp]}")
        if inp[0]["dtype"] != np.float32:
            raise ModelError(f"expected a float32 input, got {inp[0]['dtype']}")
        outs = sorted(self.interp.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        if len(outs) != 2 or outs[1]["shape"][-1] != 1:
            raise ModelError(f"unexpected model outputs {[d['shape'] for d in outs]}")
        self.in_index = inp[0]["index"]
        self.box_index, self.score_index = outs[0]["index"], outs[1]["index"]
        self.n_anchors = int(outs[0]["shape"][1])
        self.input = np.zeros((1, self.spec.input_size, self.spec.input_size, 3), np.float32)

    def detect(self, lores: np.ndarray, roi=None) -> list[Detection]:
        """Hands in ``roi`` (x, y, w, h lores px; default whole frame) of an I420 frame."""
        info = preprocess(lores, "I420", self.input, crop=roi, letterbox=True,
                          scale=1.0 / 255.0, offset=0.0)
        self.interp.set_tensor(self.in_index, self.input)
        self.interp.invoke()
        self.invocations += 1
        raw = self.interp.get_tensor(self.box_index)[0]
        logits = self.interp.get_tensor(self.score_index)[0]
        dec = weighted_nms(decode(raw, logits, self.anchors, self.spec.input_size,
                                  self.min_score))
        s = self.spec.input_size
        out = []
        for box, score, kps in zip(dec.boxes, dec.scores, dec.keypoints):
            x0, y0 = info.to_frame(float(box[0]) * s, float(box[1]) * s)
            x1, y1 = info.to_frame(float(box[2]) * s, float(box[3]) * s)
            pts = tuple(info.to_frame(float(k[0]) * s, float(k[1]) * s) for k in kps)
            out.append(Detection(x0, y0, x1, y1, float(score), "hand", pts))
        return out

    def close(self) -> None:
        self.interp = None
