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
