"""Frame queue, config, event schemas, CLI and the real-time app over a pyserial loop port."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from storeedge.drivers.camera import Frame
from storeedge.drivers.camera.lane import scripted
from storeedge.drivers.clock import SimulatedClock
from storeedge.firmware.checkout.app import CheckoutApp
from storeedge.firmware.checkout.config import CheckoutConfig
from storeedge.firmware.checkout.main import main
from storeedge.firmware.checkout.pipeline import FrameQueue
from storeedge.config import ConfigError, config_from_dict
from storeedge.events import load_all_event_types, schema_for
from helpers.paced_camera import ConsumerPacedLaneCamera
from helpers.sinks import RecordingSink


def _frame(k: int) -> Frame:
    return Frame(k, k / 30, np.zeros((4, 4), np.uint8), np.zeros((6, 4), np.uint8))


def test_frame_queue_drops_oldest_and_counts_never_blocks():
    q = FrameQueue(3)
    for k in range(10):                 # nobody consumes: put must still return every time
        q.put(_frame(k))
    assert q.dropped == 7 and len(q) == 3 and q.put_count == 10
    assert [q.get(0).seq for _ in range(3)] == [7, 8, 9]
    assert q.get(0.01) is None


def test_frame_queue_hands_frames_across_threads():
    q = FrameQueue(2)
    got = []
    t = threading.Thread(target=lambda: got.append(q.get(2.0)))
    t.start()
    q.put(_frame(1))
    t.join()
    assert got[0].seq == 1


def test_event_schemas_registered():
    types = load_all_event_types()
    for name in ("checkout.nudge", "checkout.escalate", "checkout.blind", "checkout.pass",
                 "checkout.pos_rejected", "checkout.scan_note", "checkout.transaction"):
        assert name in types
        schema_for(name)
    assert int(types["checkout.nudge"].prio) == 1
    ev = schema_for("checkout.escalate")["properties"]["evidence"]
    assert "keyframe_jpeg" in str(ev)


def test_config_is_strict():
    with pytest.raises(ConfigError, match="bag_start"):
        config_from_dict({"checkout": {"lane": {"pick_end": 0.7, "bag_start": 0.5}}},
                         CheckoutConfig)
    with pytest.raises(ConfigError, match="unknown"):
        config_from_dict({"checkout": {"camera": {"colour": "red"}}}, CheckoutConfig)
    with pytest.raises(ConfigError, match="source"):
        config_from_dict({"checkout": {"camera": {"type": "replay"}}}, CheckoutConfig)


def test_cli_validate_config(tmp_path, capsys):
    good = tmp_path / "lane.yaml"
    good.write_text("device: {id: lane-1, kind: checkout, store: s0042}\n"
                    "security: {insecure: true}\n"         # the default plain test link
                    "checkout:\n  camera: {type: synthetic}\n  pos: {type: synthetic}\n")
    assert main(["--config", str(good), "--validate-config"]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("checkout:\n  alerts:\n    escalate_after: 0\n")
    assert main(["--config", str(bad), "--validate-config"]) == 1
    out = capsys.readouterr()
    assert "escalate_after (line 3)" in out.out + out.err


def test_realtime_app_over_serial_loop(palm_model, tmp_path):
    """Capture thread, bounded queue, scanner lines through pyserial loop://, real detector;
    the learned POS timing is kept next to the outbox. The camera films on a simulated clock
    that waits for the lane to take each frame (tests/helpers/paced_camera.py): a loaded CI
    machine must not turn into frame gaps the lane rightly calls blindness."""
    clock = SimulatedClock()
    cfg = config_from_dict({"security": {"insecure": True},
                            "outbox": {"path": str(tmp_path / "outbox.db")},
                            "checkout": {"camera": {"type": "synthetic", "fps": 12},
                                         "pos": {"type": "synthetic"},
                                         "detector": {"model_path": palm_model}}},
                           CheckoutConfig)
    cam = ConsumerPacedLaneCamera(scripted(7, ["skipped", "scanned"]), clock, fps=12)
    sink = RecordingSink()
    app = CheckoutApp(cfg, sink, clock, camera=cam)
    cam.ready = lambda: len(app.queue) == 0
    stop = threading.Event()
    runner = threading.Thread(target=app.run, args=(stop,))
    runner.start()
    hang_guard = time.monotonic() + 300.0        # not a timing check: only a hang ends here
    while time.monotonic() < hang_guard and runner.is_alive() and not cam.finished \
            and not any(e.EVENT_TYPE == "checkout.pass" and e.outcome == "ok"
                        for e in sink.bodies):
        time.sleep(0.1)
    stop.set()
    runner.join(5.0)
    assert not runner.is_alive()
    assert app.queue.dropped == 0        # the camera waited: every frame was processed
    assert not [e for e in sink.bodies if e.EVENT_TYPE == "checkout.blind"]
    events = sink.bodies
    assert sink.heartbeats > 0           # the loop tells the watchdog it is alive
    kinds = [(e.EVENT_TYPE, getattr(e, "outcome", getattr(e, "reason", ""))) for e in events]
    assert ("checkout.nudge", "missed_scan") in kinds
    assert ("checkout.pass", "ok") in kinds
    assert app.lane.stats.scans == 1
    assert app.lane.timing.path == str(tmp_path / "pos-timing.json")
