"""ConfigWatcher: an app without an embedded console applies the file a stand-alone console
committed (live where it can, restart otherwise); a bad file is refused in one log line."""
from __future__ import annotations

import os
import threading

import yaml
from helpers.console_rig import BenchConfig, base_mapping

from storeedge.config import config_from_dict
from storeedge.firmware.common.liveconfig import ConfigWatcher, LiveConfig


def test_watcher_applies_live_restarts_and_refuses_bad_files(tmp_path, caplog):
    data = base_mapping(tmp_path)
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(data))
    seen, restarts = [], []
    live = LiveConfig(BenchConfig, config_from_dict(data, BenchConfig),
                      {"bench.": lambda new: seen.append(new.bench.threshold_c)},
                      restart=restarts.append)
    watcher = ConfigWatcher(str(path), live, threading.Event())
    assert watcher.check() is None                          # unchanged: nothing
    data["bench"]["threshold_c"] = -25.0
    path.write_text(yaml.safe_dump(data))
    os.utime(path, ns=(1, 10**18))
    plan = watcher.check()
    assert plan.live == ["bench.threshold_c"] and seen == [-25.0] and restarts == []
    data["device"]["store"] = "s0099"
    path.write_text(yaml.safe_dump(data))
    os.utime(path, ns=(1, 2 * 10**18))
    assert watcher.check().restart == ["device.store"] and restarts == [["device.store"]]
    path.write_text("bench: {threshold_c: .nan}\n")
    os.utime(path, ns=(1, 3 * 10**18))
    assert watcher.check() is None
    assert "changed but was not applied" in caplog.text and seen == [-25.0]
