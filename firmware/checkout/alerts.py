"""Alert policy: first incident of a transaction nudges the shopper, a repeat escalates to an
associate (the number is configurable; a ticket switch can escalate at once). Every alert
carries evidence: a small JPEG keyframe of the item, the code seen and the POS line."""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np

from storeedge.drivers.camera import rgb_from_i420
from storeedge.firmware.checkout.matcher import Outcome


@dataclass
class AlertPolicyParams:
    """``escalate_after``: the incident number (1-based) from which alerts escalate;
    ``switch_escalates``: a ticket switch always escalates; JPEG size (px) and quality."""

    escalate_after: int = 2
    switch_escalates: bool = True
    keyframe_px: int = 160
    jpeg_quality: int = 70


@dataclass(frozen=True)
class Alert:
    """An alert to emit: level nudge/escalate, reason missed_scan/ticket_switch."""

    level: str
    reason: str
    incident: int
    outcome: Outcome
    keyframe_jpeg: str | None


class AlertPolicy:
    """Counts incidents per transaction and turns outcomes into alerts."""

    def __init__(self, params: AlertPolicyParams | None = None):
        self.p = params or AlertPolicyParams()
        self.incidents = 0

    def new_transaction(self) -> None:
        self.incidents = 0

    def decide(self, o: Outcome) -> Alert | None:
        """The alert for ``o`` or None when it was honest or could not be judged."""
        if o.kind in ("ok", "unverified"):
            return None
        self.incidents += 1
        reason = "ticket_switch" if o.kind == "switch" else "missed_scan"
        escalate = self.incidents >= self.p.escalate_after or (
            o.kind == "switch" and self.p.switch_escalates)
        jpeg = keyframe_jpeg(o.item_pass.keyframe, o.item_pass.keybox, self.p.keyframe_px,
                             self.p.jpeg_quality)
        return Alert("escalate" if escalate else "nudge", reason, self.incidents, o, jpeg)


def keyframe_jpeg(lores: np.ndarray | None, box, max_px: int = 160,
                  quality: int = 70) -> str | None:
    """Base64 JPEG of ``box`` (lores px, grown 25 %) from an I420 frame, <= ``max_px``."""
    if lores is None or box is None:
        return None
    from PIL import Image

    rgb = rgb_from_i420(lores)
    h, w, _ = rgb.shape
    x0, y0, x1, y1 = box
    gx, gy = (x1 - x0) // 4, (y1 - y0) // 4
    crop = rgb[max(0, y0 - gy):min(h, y1 + gy), max(0, x0 - gx):min(w, x1 + gx)]
    img = Image.fromarray(np.ascontiguousarray(crop))
    img.thumbnail((max_px, max_px))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")
