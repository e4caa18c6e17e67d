"""Versioned config store: versions, history, pruning, crash recovery, pending confirm."""
from __future__ import annotations

import os

import pytest
import yaml

from storeedge.atomic import TMP_PREFIX
from storeedge.firmware.console.exc import StoreError
from storeedge.firmware.console.store import ConfigStore, PendingConfirm


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text("device:\n  id: fz-1\n")
    return path


def test_first_open_records_the_live_file_as_version_1(live):
    store = ConfigStore(live)
    assert store.numbers() == [1]
    assert store.active() == {"device": {"id": "fz-1"}}
    assert store.info(1).by == "initial"
    assert yaml.safe_load(live.read_text()) == {"device": {"id": "fz-1"}}   # header is comments


def test_commits_are_numbered_and_the_live_file_follows(live):
    store = ConfigStore(live)
    for i in range(3):
        store.commit({"n": i}, note=f"c{i}")
    assert store.numbers() == [1, 2, 3, 4]
    assert yaml.safe_load(live.read_text()) == {"n": 2}
    assert [v.note for v in store.history()] == ["c2", "c1", "c0", ""]
    assert store.mapping(2) == {"n": 0}
    assert live.read_bytes() == (live.parent / "dev.yaml.versions" / "000004.yaml").read_bytes()


def test_old_versions_are_pruned(live):
    store = ConfigStore(live, keep=3)
    for i in range(5):
        store.commit({"n": i})
    assert store.numbers() == [4, 5, 6]


def test_interrupted_commit_is_removed_on_open(live):
    store = ConfigStore(live)
    store.commit({"n": 1})
    # power cut after the version file was written but before the live file was replaced
    orphan = live.parent / "dev.yaml.versions" / "000003.yaml"
    orphan.write_bytes(b"#@ version: 3\n#@ epoch: 0\nn: 2\n")
    (live.parent / (TMP_PREFIX + "abc")).write_bytes(b"half")
    reopened = ConfigStore(live)
    assert reopened.numbers() == [1, 2] and reopened.active() == {"n": 1}
    assert not any(n.startswith(TMP_PREFIX) for n in os.listdir(live.parent))


def test_hand_edit_of_live_file_becomes_a_version(live):
    ConfigStore(live).commit({"n": 1})
    live.write_text("n: 99\n")
    store = ConfigStore(live)
    assert store.active() == {"n": 99} and store.history()[0].by == "external edit"


def test_missing_live_file_is_restored_from_newest_version(live):
    ConfigStore(live).commit({"n": 1})
    live.unlink()
    assert ConfigStore(live).active() == {"n": 1}
    assert yaml.safe_load(live.read_text()) == {"n": 1}


def test_no_config_at_all_is_an_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        ConfigStore(tmp_path / "none.yaml")


def test_pending_confirm_round_trip(live):
    store = ConfigStore(live)
    assert store.pending() is None
    store.set_pending(PendingConfirm(2, 1, 1234.5))
    assert ConfigStore(live).pending() == PendingConfirm(2, 1, 1234.5)
    store.set_pending(None)
    assert store.pending() is None
