"""Kill the app between "credential used" and "relay on" (SIGKILL, a real subprocess), boot
again on the same state file: the code cannot be reused."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from storeedge.credential import CredentialSpec, generate_signing_key, issue
from storeedge.doorkeys import save_signing_key

CHILD = str(Path(__file__).with_name("kill_child.py"))


def spawn(mode: str, work: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, CHILD, mode, str(work)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_after_commit_before_relay_code_not_reusable(tmp_path):
    key = generate_signing_key(1)
    save_signing_key(tmp_path / "key.pem", key)
    now = int(time.time())
    text = issue(key, CredentialSpec("s0042", "door-1", "ACME", "Dee", "PO-1", now - 600,
                                     now + 3600))
    (tmp_path / "code.txt").write_text(text)

    child = spawn("use", tmp_path)
    marker = tmp_path / "committed.json"
    deadline = time.monotonic() + 60
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), child.communicate(timeout=5)
    seen = json.loads(marker.read_text())
    assert seen["relay_state"] is False               # killed before the relay moved
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL

    again = spawn("retry", tmp_path)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"granted": False, "reason": "used", "relay_states": [False]}


def test_retry_without_crash_would_grant(tmp_path):
    """Control: the same child grants a fresh code (so the test above can fail)."""
    key = generate_signing_key(1)
    save_signing_key(tmp_path / "key.pem", key)
    now = int(time.time())
    (tmp_path / "code.txt").write_text(issue(key, CredentialSpec(
        "s0042", "door-1", "ACME", "Dee", "PO-2", now - 600, now + 3600)))
    child = spawn("retry", tmp_path)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["granted"] is True and result["relay_states"] == [False, True]
