"""Config files written by people: opening the console changes no file; a commit keeps the
comments, key order and layout of everything it did not change."""
from __future__ import annotations

import os

import yaml
from helpers.console_rig import Terminal

from storeedge.firmware.console.store import ConfigStore, update_yaml

HAND_WRITTEN = """\
# freezer fz-1, aisle 7 -- ask Dana before changing the limits
device:
  id: fz-1            # label on the cabinet
  kind: freezer
  store: s0042

outbox: {path: OUTBOX}
security:
  insecure: true      # bench only

bench:
  # colder than the spec on purpose (ice cream)
  threshold_c: -20.0
  tags: [aisle-7, ice]
  probes:
    p1: {rom: 28-0316a2797aff, interval_s: 60}
"""


def write(tmp_path):
    path = tmp_path / "device.yaml"
    path.write_text(HAND_WRITTEN.replace("OUTBOX", str(tmp_path / "outbox.db")))
    return path


def test_starting_the_console_changes_no_file(tmp_path, make_console, target, config_path):
    path = write(tmp_path)
    os.replace(path, config_path)
    before = open(config_path, "rb").read()
    stamp = os.stat(config_path).st_mtime_ns
    make_console(target)                 # opens the store: records version 1
    assert open(config_path, "rb").read() == before
    assert os.stat(config_path).st_mtime_ns == stamp
    assert ConfigStore(config_path).recovery == "consistent"


def test_commit_keeps_comments_and_layout(tmp_path, make_console, target, config_path):
    os.replace(write(tmp_path), config_path)
    t = Terminal(make_console(target))
    t.login()
    t.run("set bench.threshold_c -24")
    t.run("set bench.mode defrost")
    t.run("unset bench.tags")
    assert "committed version 2" in t.run("commit")
    text = open(config_path).read()
    for kept in ("# freezer fz-1, aisle 7 -- ask Dana",
                 "id: fz-1            # label on the cabinet",
                 "insecure: true      # bench only", "# colder than the spec on purpose",
                 "p1: {rom: 28-0316a2797aff, interval_s: 60}"):
        assert kept in text
    assert "threshold_c: -24.0" in text and "mode: defrost" in text and "tags" not in text
    data = yaml.safe_load(text)
    assert data["bench"]["threshold_c"] == -24.0
    t.run("rollback 1")
    assert "committed version 3" in t.run("commit")
    text = open(config_path).read()
    assert yaml.safe_load(text)["bench"]["tags"] == ["aisle-7", "ice"]      # back (re-added)
    assert "# label on the cabinet" in text and "threshold_c: -20.0" in text


def test_update_yaml_falls_back_to_a_plain_dump_when_it_cannot_round_trip():
    assert update_yaml("", {"a": {"b": 1}}) == "a:\n  b: 1\n"
    assert update_yaml("- a list\n", {"a": 1}) == "a: 1\n"
    assert update_yaml("a: 1  # one\nb: 2\n", {"a": 3, "b": 2}) == "a: 3  # one\nb: 2\n"
