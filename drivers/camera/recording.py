"""Labelled lane recordings: a store's own footage, scored the same way as the synthetic lanes.

A recording is a directory::

    lane-3-2026-12-06.lane/
      meta.json     {"format": "storeedge-lane-recording", "v": 1, "fps": 15.0,
                     "downscale": 3, "video": "video.mp4", "lane": {...}, "note": "..."}
      video.mp4     H.264 (any file PyAV decodes); frame times are the presentation times (s)
      pos.jsonl     one POS line per row, times on the video's timeline (s):
                    {"t": 3.41, "kind": "scan", "line": "]E04006381333931"}
                    {"t": 0.20, "kind": "txn_start", "txn": "T17"}
      truth.jsonl   one labelled pass per row (optional; a person labels real footage):
                    {"kind": "skipped", "t_start": .., "t_scan_in": .., "t_scan_out": ..,
                     "t_end": .., "codes": [..], "scanned": [..], "code_visible": true,
                     "expect": "missed"}   (expect: none, missed or switch)

:func:`write_recording` writes one; :func:`open_recording` reads it back as a
:class:`LaneRecording` (a camera, replayable POS records, the truth).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Iterable

from storeedge.drivers.camera.base import Frame
from storeedge.drivers.camera.exc import ReplayError
from storeedge.drivers.camera.lane import TruthPass

FORMAT = "storeedge-lane-recording"
EXPECT = ("none", "missed", "switch")


@dataclass(frozen=True)
class PosRecord:
    """A POS line on the recording's timeline: ``t`` s, kind scan/txn_start/txn_end, the raw
    scanner line (AIM prefix + code) for scans, the transaction id for start/end."""

    t: float
    kind: str
    line: str = ""
    txn: str = ""


@dataclass
class LaneRecording:
    """A recording read by :func:`open_recording`."""

    path: str
    meta: dict
    pos: list[PosRecord] = field(default_factory=list)
    truth: list[TruthPass] = field(default_factory=list)

    @property
    def video(self) -> str:
        return os.path.join(self.path, self.meta.get("video", "video.mp4"))

    def camera(self, **kw):
        """A :class:`~storeedge.drivers.camera.video.VideoReplayCamera` on the video."""
        from storeedge.drivers.camera.video import VideoReplayCamera

        kw.setdefault("downscale", int(self.meta.get("downscale", 3)))
        return VideoReplayCamera(self.video, **kw)

    def pos_records(self, t0: float = 0.0) -> list[tuple[float, object]]:
        """Records for :class:`~storeedge.drivers.pos.ReplayPosFeed` (scans as bytes)."""
        return [(t0 + p.t, p.line.encode("ascii", "replace") if p.kind == "scan" else p.kind)
                for p in self.pos]

    @property
    def duration(self) -> float:
        """Last time in the recording (s): the last POS line or labelled pass end."""
        ts = [p.t for p in self.pos] + [t.t_end for t in self.truth]
        return max(ts, default=0.0)


def write_recording(path: str, frames: Iterable[Frame], pos: Iterable[PosRecord], *,
                    fps: float, truth: Iterable[TruthPass] = (), lane: dict | None = None,
                    lossless: bool = False, note: str = "", downscale: int = 3) -> int:
    """Write a recording directory at ``path``; frame and POS times should share one
    timeline (s). ``lossless``: x264 qp=0 (large files; for tests). Returns frames written."""
    from storeedge.drivers.camera.video import write_video

    os.makedirs(path, exist_ok=True)
    n = write_video(os.path.join(path, "video.mp4"), frames, fps, lossless=lossless)
    _write_jsonl(os.path.join(path, "pos.jsonl"), (asdict(p) for p in pos))
    _write_jsonl(os.path.join(path, "truth.jsonl"), (asdict(t) for t in truth))
    meta = {"format": FORMAT, "v": 1, "fps": fps, "downscale": downscale,
            "video": "video.mp4", "lane": lane or {}, "note": note, "frames": n}
    with open(os.path.join(path, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return n


def _write_jsonl(path: str, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def open_recording(path: str) -> LaneRecording:
    """Read the recording directory ``path``; raises :class:`ReplayError` with the file and
    line of the first malformed entry."""
    try:
        with open(os.path.join(path, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise ReplayError(f"{path}: not a lane recording ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ReplayError(f"{path}/meta.json: format is not {FORMAT!r}")
    rec = LaneRecording(path, meta)
    rec.pos = [_pos(row, where) for row, where in _read_jsonl(path, "pos.jsonl")]
    rec.truth = [_truth(row, where) for row, where in _read_jsonl(path, "truth.jsonl")]
    if not os.path.isfile(rec.video):
        raise ReplayError(f"{path}: video {meta.get('video')!r} is missing")
    return rec


def _read_jsonl(path: str, name: str):
    full = os.path.join(path, name)
    if not os.path.exists(full):
        return
    with open(full, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line), f"{name}:{n}"
                except ValueError as exc:
                    raise ReplayError(f"{path}/{name}:{n}: not JSON ({exc})") from None


def _pos(row, where: str) -> PosRecord:
    try:
        rec = PosRecord(float(row["t"]), str(row["kind"]), str(row.get("line", "")),
                        str(row.get("txn", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError(f"{where}: bad POS record ({exc})") from None
    if rec.kind not in ("scan", "txn_start", "txn_end"):
        raise ReplayError(f"{where}: unknown POS kind {rec.kind!r}")
    return rec


def _truth(row, where: str) -> TruthPass:
    try:
        t = TruthPass(str(row["kind"]), float(row["t_start"]), float(row["t_scan_in"]),
                      float(row["t_scan_out"]), float(row["t_end"]),
                      tuple(str(c) for c in row.get("codes", ())),
                      tuple(str(c) for c in row.get("scanned", ())),
                      bool(row.get("code_visible", False)), str(row.get("expect", "none")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError(f"{where}: bad truth record ({exc})") from None
    if t.expect not in EXPECT:
        raise ReplayError(f"{where}: expect must be one of {EXPECT}, got {t.expect!r}")
    return t


def pos_from_script(script) -> list[PosRecord]:
    """The synthetic lane script's POS lines as recording records."""
    return [PosRecord(p.t, p.kind, p.symbology + p.code if p.kind == "scan" else "")
            for p in script.pos]
