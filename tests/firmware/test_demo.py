"""`storeedge demo` end to end: every device's events reach the store, nothing is left out."""
from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_and_delivers_everything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "storeedge", "demo", "--duration", "8",
                          "--workdir", str(tmp_path)], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "could not join the demo" not in out.stdout, out.stdout
    summary = re.search(r"demo: summary: events_sent=(\d+), events_stored=(\d+), "
                        r"duplicates_dropped=(\d+), gaps_recorded=(\d+), gaps_open=(\d+), "
                        r"not_yet_stored=(\{.*\})", out.stdout)
    assert summary, out.stdout[-3000:]
    sent, stored = int(summary.group(1)), int(summary.group(2))
    assert sent > 40 and stored == sent
    assert summary.group(6) == "{}"
    for dev in ("sim-1", "fz-1", "door-1", "lane-1"):
        assert re.search(rf"^  {dev}\s", out.stdout, re.M), f"{dev} missing from the table"


def test_the_counter_is_a_device_app_built_through_its_spec():
    """The demo's counter is built like every app (``COUNTER_SPEC.build``) and its events and
    heartbeats leave through the sink, numbered from 0."""
    import threading

    from storeedge.core_events import SimCounter
    from storeedge.firmware import demo

    class Sink:
        def __init__(self):
            self.bodies, self.beats, self.stop = [], 0, threading.Event()

        def emit(self, body, ts=None):
            self.bodies.append(body)
            if len(self.bodies) == 3:
                self.stop.set()

        def heartbeat(self):
            self.beats += 1

        def on_command(self, name, handler):
            raise AssertionError("the counter takes no command")

    sink = Sink()
    app = demo.COUNTER_SPEC.build_function()(None, sink, None, period_s=0.001)
    app.run(sink.stop)
    assert [b.n for b in sink.bodies] == [0, 1, 2]
    assert all(isinstance(b, SimCounter) for b in sink.bodies)
    assert app.sent == 3 and sink.beats == 3 and app.serve_config("x.yaml", None) is None
