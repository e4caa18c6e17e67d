"""The update-client layer's scripts as the A/B VM test found them.

mark-good while RAUC is busy: RAUC's service runs one D-Bus method at a
time, so during an install ``rauc status mark-good`` fails with "already processing a different
method" (seen in the A/B VM test: mark-good on slot A died with a traceback while the inbox
installed a bundle).  It must wait for RAUC, not give up; any other failure is one line.

``rauc`` here is a stand-in script on PATH that answers like RAUC's client does (its service
needs D-Bus and a slot config); the A/B test (``-m image``) runs the real one.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers.imagelib import load_script

SCRIPT = (Path(__file__).resolve().parents[2]
          / "images/layers/update-client/rootfs/usr/lib/storeedge/mark-good")
BUSY = ('Error retrieving slot status via D-Bus: error calling D-Bus method "GetSlotStatus": '
        "already processing a different method")


@pytest.fixture
def mark_good(monkeypatch):
    module = load_script("mark_good_script", SCRIPT)
    monkeypatch.setattr(module, "RAUC_RETRY_S", 0.05)
    return module


def fake_rauc(tmp_path, monkeypatch, busy_times: int, final: str = "ok") -> Path:
    """A ``rauc`` that is busy ``busy_times`` times, then succeeds (final ok) or fails."""
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tail = "exit 0" if final == "ok" else f"echo '{final}' >&2; exit 1"
    (bin_dir / "rauc").write_text(
        f"#!/bin/sh\necho \"$*\" >> {calls}\n"
        f"n=$(wc -l < {calls})\n"
        f"if [ \"$n\" -le {busy_times} ]; then echo '{BUSY}' >&2; exit 1; fi\n{tail}\n")
    (bin_dir / "rauc").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return calls


def test_waits_while_rauc_installs_then_marks(mark_good, tmp_path, monkeypatch, capsys):
    calls = fake_rauc(tmp_path, monkeypatch, busy_times=3)
    assert mark_good.rauc_status("mark-good") is True
    assert calls.read_text().splitlines() == ["status mark-good"] * 4
    out = capsys.readouterr().out
    assert out.count("RAUC is busy") == 1 and "Traceback" not in out


def test_other_failures_are_one_line_and_not_retried(mark_good, tmp_path, monkeypatch, capsys):
    calls = fake_rauc(tmp_path, monkeypatch, busy_times=0, final="No slot with class rootfs")
    assert mark_good.rauc_status("mark-bad") is False
    assert calls.read_text().splitlines() == ["status mark-bad"]
    assert capsys.readouterr().out.strip() == (
        "mark-good: rauc status mark-bad failed: No slot with class rootfs")


def test_gives_up_after_the_busy_deadline(mark_good, tmp_path, monkeypatch, capsys):
    fake_rauc(tmp_path, monkeypatch, busy_times=10_000)
    monkeypatch.setattr(mark_good, "RAUC_BUSY_WAIT_S", 0.3)
    assert mark_good.rauc_status("mark-good") is False
    assert "already processing" in capsys.readouterr().out.splitlines()[-1]


def test_update_inbox_gives_raucs_own_reason():
    """RAUC's install output ends with "Installing `...` failed"; the reason is its LastError
    line (output copied from the A/B VM test's refused foreign-CA bundle)."""
    inbox = load_script("update_inbox_script", SCRIPT.parent / "update-inbox")
    output = ("storeedge-update: verifying and installing /data/update/inbox/foreign.raucb\n"
              "installing\n  0% Installing\n 20% Verifying signature\n"
              " 40% Verifying signature failed.\n 40% Checking bundle failed.\n"
              "100% Installing failed.\n"
              "LastError: signature verification failed: Verify error: unable to get local "
              "issuer certificate\nInstalling `/data/update/inbox/foreign.raucb` failed\n")
    assert inbox.rauc_reason(output) == ("signature verification failed: Verify error: "
                                         "unable to get local issuer certificate")
    assert inbox.rauc_reason("rauc: No space left on device\n") == "rauc: No space left on device"
    assert inbox.rauc_reason("") == "rauc install failed"
