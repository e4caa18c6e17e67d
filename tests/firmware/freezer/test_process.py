"""``storeedge freezer --config`` as a real process (sim backend, real Mosquitto): starts,
samples, and on SIGTERM flushes its readings into the outbox and exits 0."""
from __future__ import annotations

import sqlite3
import subprocess
import time

from helpers.freezer_rig import freezer_config_dict
from helpers.stack import Proc, link_for, wait_for, write_yaml


def outbox_types(path):
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return []
    try:
        return [r[0] for r in conn.execute("SELECT type FROM events ORDER BY seq")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def test_runs_as_a_process_and_stops_cleanly(tmp_path, broker):
    data = freezer_config_dict(tmp_path)
    data["link"] = link_for(broker.url, "fz-1", "freezer")
    data["freezer"]["units"]["ice1"]["door"] = {"pin": None}
    data["freezer"]["console_port"] = str(tmp_path / "no-such-tty")   # no secret: logged
    cfg = write_yaml(tmp_path / "freezer.yaml", data)
    proc = Proc(["storeedge", "freezer", "--config", str(cfg)], tmp_path / "freezer.log",
                stdout=subprocess.DEVNULL).start()
    outbox = data["outbox"]["path"]
    log = tmp_path / "freezer.log"
    try:
        assert wait_for(lambda: "device.started" in outbox_types(outbox), 20)
        assert wait_for(lambda: "monitor running" in log.read_text(), 20)
        time.sleep(0.5)                                        # the first pass reads
    finally:
        proc.stop()
    assert proc.proc.returncode == 0
    assert "freezer.readings" in outbox_types(outbox)          # flushed on SIGTERM
    text = log.read_text()
    assert "readings are SIMULATED" in text and "console on" in text
