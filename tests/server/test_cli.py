"""Store-server commands on a real store database: counts and the door chain check."""
from __future__ import annotations

import json
import subprocess
import sys

from storeedge.audit import genesis, make_link
from storeedge.server.db import Row, open_store_db


def _chained_door_events(dev: str, n: int) -> list[Row]:
    rows, prev = [], genesis(dev)
    for i in range(n):
        body = {"state": "locked" if i % 2 else "open"}
        link = make_link(dev, i, prev, "door.state", 1_795_000_000 + i, body)
        body["chain"] = {"i": link.i, "prev": link.prev, "h": link.h, "t": link.t}
        prev = link.h
        rows.append(Row(dev, i + 1, "dock_door", "s0042", "door.state", 2,
                        "2026-11-18T11:06:40.000000Z", 0.0, json.dumps(body)))
    return rows


def _run(*args):
    return subprocess.run([sys.executable, "-m", "storeedge", "store-server", *args],
                          capture_output=True, text=True, timeout=60)


def test_verify_chain_reports_a_removed_event(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    db = open_store_db(url)
    db.ensure_device("door-1", "dock_door", "s0042")
    db.insert_events(_chained_door_events("door-1", 6))
    db.close()
    ok = _run("verify-chain", "--db", url, "--dev", "door-1")
    assert ok.returncode == 0 and "chain ok: 6 events" in ok.stdout, ok.stdout + ok.stderr

    db = open_store_db(url)
    db.query("DELETE FROM events WHERE dev='door-1' AND seq=3")
    db.close()
    bad = _run("verify-chain", "--db", url, "--dev", "door-1")
    assert bad.returncode == 1 and "missing [2]" in bad.stdout, bad.stdout

    counts = _run("counts", "--db", url)
    assert counts.returncode == 0 and "door-1" in counts.stdout
