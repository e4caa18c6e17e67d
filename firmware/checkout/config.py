"""Config sections of the checkout lane app (``checkout:`` in the device YAML).

Example::

    device: {id: lane-3, kind: checkout, store: s0042}
    checkout:
      camera: {type: picamera2, main_width: 1920, main_height: 1080, fps: 30}
      pos: {type: serial, url: /dev/ttyUSB0, baudrate: 9600}
      detector: {type: litert, min_score: 0.5, edgetpu: auto}
      lane: {pick_end: 0.36, bag_start: 0.62, direction: left_to_right}
      alerts: {escalate_after: 2, switch_escalates: true}
"""
from __future__ import annotations

from storeedge.config import ConfigError, section, setting
from storeedge.settings import DeviceConfig


@section
class CameraSection:
    """Where frames come from."""

    type: str = setting("picamera2", doc="camera backend (v4l2: USB/UVC camera; libcamera: "
                                         "Pi CSI camera through python3-libcamera)",
                        choices=("picamera2", "libcamera", "v4l2", "replay", "synthetic"))
    device: str = setting("/dev/video0", doc="v4l2: the video node")
    pixel_format: str = setting("auto", doc="v4l2: pixel format (auto prefers YUYV)",
                                choices=("auto", "YUYV", "MJPEG"))
    main_width: int = setting(1920, unit="px", min=320, max=4608, doc="main stream width")
    main_height: int = setting(1080, unit="px", min=240, max=2592, doc="main stream height")
    lores_width: int = setting(320, unit="px", min=160, max=640, doc="lores stream width (even)")
    lores_height: int = setting(180, unit="px", min=90, max=480,
                                doc="lores stream height (even)")
    fps: float = setting(30.0, unit="frames/s", min=5, max=120, doc="frame rate")
    source: str = setting("", doc="replay: image folder, .npz recording or video file "
                                  "(.mp4/.mkv/.mov/.avi/.h264, decoded by PyAV)")
    seed: int = setting(1, min=0, max=2**31 - 1, doc="synthetic: scenario seed")
    level: str = setting("easy", doc="synthetic: difficulty",
                         choices=("easy", "medium", "hard"))
    queue_frames: int = setting(4, unit="frames", min=1, max=64,
                                doc="bounded frame queue; the oldest frame is dropped when full")

    def check(self) -> None:
        if self.lores_width % 2 or self.lores_height % 2:
            raise ConfigError("lores_width", "lores stream sizes must be even (YUV420)")
        if self.type == "replay" and not self.source:
            raise ConfigError("source", "a replay camera needs a source folder or .npz")


@section
class PosSection:
    """Where POS scans come from."""

    type: str = setting("serial", doc="POS feed (synthetic: the synthetic lane's scanner, "
                                      "written through a pyserial loop:// port)",
                        choices=("serial", "mqtt", "synthetic", "none"))
    url: str = setting("/dev/ttyUSB0", doc="serial: device path or pyserial URL; "
                                           "mqtt: broker URL")
    baudrate: int = setting(9600, unit="bit/s", min=1200, max=921600, doc="serial speed")
    topic: str = setting("pos/lane/scans", doc="mqtt: topic the POS publishes on")
    idle_end_s: float = setting(90.0, unit="s", min=10, max=3600,
                                doc="a transaction ends after this long without activity")
    stall_passes: int = setting(4, unit="passes", min=2, max=50,
                                doc="passes in a row without a scan (and no POS line) before "
                                    "the POS is reported stalled")
    stall_after_s: float = setting(10.0, unit="s", min=1, max=600,
                                   doc="and no POS line for at least this long")


@section
class DetectorSection:
    """The hand detector (LiteRT)."""

    type: str = setting("litert", doc="detector", choices=("litert", "none"))
    model_path: str = setting("", doc="model file (empty: packaged palm_detection_lite)")
    min_score: float = setting(0.5, min=0.05, max=0.99, doc="detection threshold")
    threads: int = setting(1, min=1, max=4, doc="interpreter threads")
    edgetpu: str = setting("auto", doc="Edge TPU delegate", choices=("auto", "on", "off"))
    detect_every: int = setting(2, unit="frames", min=1, max=30,
                                doc="run the detector on a moving item every n frames")


@section
class LaneSection:
    """Lane geometry in the image and read cadence."""

    pick_end: float = setting(0.36, min=0.05, max=0.9,
                              doc="fraction of the width where the scan zone starts")
    bag_start: float = setting(0.62, min=0.1, max=0.95,
                               doc="fraction of the width where the bagging area starts")
    direction: str = setting("left_to_right", doc="shoppers move items this way",
                             choices=("left_to_right", "right_to_left"))
    read_every: int = setting(2, unit="frames", min=1, max=30,
                              doc="read barcodes on a moving item every n frames")
    blind_after_s: float = setting(0.5, unit="s", min=0.1, max=10,
                                   doc="a gap between frames longer than this is blindness")

    def check(self) -> None:
        if self.bag_start <= self.pick_end:
            raise ConfigError("bag_start", f"{self.bag_start} must be above pick_end "
                                           f"({self.pick_end})")


@section
class MatchSection:
    """Scan-match windows: the matcher's parameter object
    (:class:`~storeedge.firmware.checkout.matcher.TransactionMatcher`).

    ``scan_grace_s`` (s) is not a setting: a scan no pass took is decided this long after it
    was read (a class constant; a test may set it on an instance).
    """

    scan_grace_s = 4.0

    pre_s: float = setting(0.6, unit="s", min=0, max=5,
                           doc="a scan may come this early before the item reaches the scanner")
    post_s: float = setting(0.8, unit="s", min=0.1, max=5,
                            doc="scanner + POS latency allowed after the item left the scanner")
    double_s: float = setting(2.0, unit="s", min=0, max=10,
                              doc="same code again within this time is a double scan")
    min_reads: int = setting(2, unit="reads", min=1, max=10,
                             doc="frames a code must be read on before it can create or change "
                                 "a slot (fewer: a possible misread, counted, never alerted)")
    timing_file: str = setting("pos-timing.json",
                               doc="learned POS timing, kept next to the outbox (relative) or "
                                   "at this absolute path; empty: not kept across restarts")


@section
class AlertSection:
    """Alert policy."""

    escalate_after: int = setting(2, unit="incidents", min=1, max=20,
                                  doc="the n-th incident of a transaction calls an associate")
    switch_escalates: bool = setting(True, doc="a ticket switch calls an associate at once")
    keyframe_px: int = setting(160, unit="px", min=32, max=640,
                               doc="longest side of the evidence JPEG")
    jpeg_quality: int = setting(70, min=20, max=95, doc="evidence JPEG quality")


@section
class CheckoutSection:
    """The checkout lane app."""

    camera: CameraSection = setting(CameraSection)
    pos: PosSection = setting(PosSection)
    detector: DetectorSection = setting(DetectorSection)
    lane: LaneSection = setting(LaneSection)
    match: MatchSection = setting(MatchSection)
    alerts: AlertSection = setting(AlertSection)


@section
class CheckoutConfig(DeviceConfig):
    """A checkout lane device."""

    checkout: CheckoutSection = setting(CheckoutSection)
