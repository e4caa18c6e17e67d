"""The pure pass's selection (tests/helpers/kerneluse.py): a nested pytest records which sample
tests reach a native kernel -- in the test, in a child process, killed children, a child that
cannot be traced -- and the pure pass leaves out exactly the clean ones."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers.kerneluse import Selector, source_hashes

TESTS = Path(__file__).resolve().parent

KERNEL_MODULE = '''
import signal, subprocess, sys

def test_calls_a_kernel_in_process():
    import numpy as np
    from storeedge.native import scan_match
    assert scan_match.BACKEND in ("cython", "python")

def test_child_uses_a_kernel():
    subprocess.run([sys.executable, "-c", "import storeedge.native.locate"], check=True)

def test_mate_of_a_kernel_user():
    assert True
'''

CLEAN_MODULE = '''
import signal, subprocess, sys

def test_child_without_kernel():
    subprocess.run([sys.executable, "-c", "import storeedge.events"], check=True)

def test_child_killed_in_start_up():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    p.send_signal(signal.SIGKILL)
    p.wait()

def test_plain():
    assert 1 + 1 == 2
'''

UNKNOWN_MODULE = '''
import subprocess, sys

def test_untraceable_child():
    subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
'''

THREAD_MODULE = '''
def test_thread_started_by_a_fixture_uses_a_kernel(worker):
    worker.join()
'''

CONFTEST = '''
import threading
import pytest

@pytest.fixture
def worker():
    def run():
        from storeedge.native import preprocess
        assert preprocess.BACKEND
    t = threading.Thread(target=run)
    t.start()
    return t
'''


def _pytest(tmp_path, *args, pure: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STOREEDGE_PURE"}
    if pure:
        env["STOREEDGE_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "helpers.kerneluse", "-c",
                           os.devnull, "--rootdir", str(tmp_path), "-q", "-p", "no:cacheprovider",
                           *args, str(tmp_path)], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)


def _samples(tmp_path) -> None:
    (tmp_path / "test_kernel.py").write_text(KERNEL_MODULE)
    (tmp_path / "test_clean.py").write_text(CLEAN_MODULE)
    (tmp_path / "test_unknown.py").write_text(UNKNOWN_MODULE)
    (tmp_path / "test_thread.py").write_text(THREAD_MODULE)
    (tmp_path / "conftest.py").write_text(CONFTEST)


def test_the_record_keeps_every_test_that_reaches_a_kernel_and_only_those(tmp_path):
    _samples(tmp_path)
    record = tmp_path / "record.json"
    done = _pytest(tmp_path, f"--kernel-use-record={record}", pure=False)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(record.read_text())
    kept = {n.split("::")[1]: why for n, why in doc["kept"].items()}
    assert sorted(n.split("::")[1] for n in doc["clean"]) == [
        "test_child_killed_in_start_up", "test_child_without_kernel", "test_plain"]
    assert "used storeedge.native._scan_match_" in kept["test_calls_a_kernel_in_process"]
    assert "child process used a kernel" in kept["test_child_uses_a_kernel"]
    assert kept["test_mate_of_a_kernel_user"] == "another test of its module reaches a kernel"
    assert "left no trace (unknown)" in kept["test_untraceable_child"]
    assert "used storeedge.native._preprocess_" in kept[
        "test_thread_started_by_a_fixture_uses_a_kernel"]
    # the envelope decoder's two-path test was not part of this run: no deselection from it
    assert any("test_compiled_and_pure_envelope_decoding_agree" in p for p in doc["problems"])


def test_the_pure_pass_leaves_out_exactly_the_clean_tests(tmp_path):
    _samples(tmp_path)
    record = tmp_path / "record.json"
    clean = ["test_clean.py::test_plain", "test_clean.py::test_child_without_kernel"]
    record.write_text(json.dumps({"format": 1, "sources": source_hashes(), "problems": [],
                                  "clean": clean, "kept": {}}))
    done = _pytest(tmp_path, f"--kernel-use-select={record}", "-rA", pure=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pure pass: deselected 2 of 8 tests" in done.stdout, done.stdout
    assert "6 passed, 2 deselected" in done.stdout
    assert "PASSED test_clean.py::test_plain" not in done.stdout
    assert "PASSED test_clean.py::test_child_killed_in_start_up" in done.stdout


def test_an_incomplete_or_stale_record_deselects_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("STOREEDGE_PURE", "1")
    record = tmp_path / "record.json"
    clean = ["test_clean.py::test_plain"]
    stale = dict(source_hashes(), **{"storeedge/events.py": "0" * 64})
    for doc, why in [({"problems": ["a kernel was used outside any test"],
                       "sources": source_hashes()}, "record incomplete"),
                     ({"problems": [], "sources": stale}, "storeedge/events.py"),
                     ({"problems": [], "sources": source_hashes(), "format": 0}, "format")]:
        record.write_text(json.dumps({"format": 1, "clean": clean, "kept": {}, **doc}))
        got, reason = Selector(record)._load()
        assert got == set() and why in reason, reason
    record.write_text(json.dumps({"format": 1, "clean": clean, "kept": {}, "problems": [],
                                  "sources": dict(source_hashes(), **{"tests/x/test_y.py": ""})}))
    assert Selector(record)._load() == (set(clean), "")     # a changed test module: its own
    (tmp_path / "none.json").unlink(missing_ok=True)
    assert "no usable record" in Selector(tmp_path / "none.json")._load()[1]
