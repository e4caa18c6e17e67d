"""The store manifest: the worked example loads; every mistake is one line with key and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from storeedge.exc import ConfigError
from storeedge.manifest import load_manifest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "store-12-lanes.yaml"

BASE = """\
store: {id: s0042}
gateway: {id: gw-1, host: 10.0.0.2}
store_server: {id: store-1, host: 10.0.0.3}
devices:
  - {id: lane-1, kind: checkout}
  - id: fz-1
    kind: freezer
    freezer:
      units: {u1: {probes: {top: 28-00000a1b2c3d}}}
  - {id: door-1, kind: dock_door, door: {relay_pin: 17, contact_pin: 27}}
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "store.yaml"
    path.write_text(text)
    return load_manifest(path)


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert "\n" not in str(info.value)
    return info.value


def test_worked_example_is_a_12_lane_store():
    man = load_manifest(EXAMPLE)
    kinds = [d.kind for d in man.devices]
    assert (kinds.count("checkout"), kinds.count("freezer"), kinds.count("dock_door")) == (12, 6, 2)
    ids = man.identities()
    assert ids["gw-1"] == "gateway" and ids["store-1"] == "store_server"
    assert ids["lane-07-con"] == "checkout" and ids["fz-03-con"] == "freezer"
    assert len(ids) == 2 + 20 + 20
    assert man.relayed()[:3] == ["lane-01", "lane-01-con", "lane-02"]
    assert len(man.relayed()) == 40
    assert man.devices[12].freezer.units["cab1"].probes["top"] == "28-00000a1b0101"


def test_minimal_manifest_defaults(tmp_path):
    man = _load(tmp_path, BASE)
    assert man.gateway.broker_port == 8883 and man.store_server.broker_port == 8884
    assert man.devices[0].hardware().camera == "picamera2"
    assert man.identities() == {"gw-1": "gateway", "store-1": "store_server",
                                "lane-1": "checkout", "fz-1": "freezer", "door-1": "dock_door"}


def test_unknown_key_named_with_line(tmp_path):
    err = _error(tmp_path, BASE.replace("{id: lane-1, kind: checkout}",
                                        "{id: lane-1, kind: checkout, colour: red}"))
    assert err.key == "devices[0].colour" and err.line == 5
    assert "unknown key" in err.reason and "location" in err.reason


def test_duplicate_id_named_with_line(tmp_path):
    err = _error(tmp_path, BASE.replace("id: door-1", "id: lane-1"))
    assert err.key == "devices[2].id" and err.line == 10
    assert "duplicate id 'lane-1'" in err.reason and "devices[0]" in err.reason


def test_device_id_taken_by_the_gateway(tmp_path):
    err = _error(tmp_path, BASE.replace("id: door-1", "id: gw-1"))
    assert err.key == "devices[2].id" and "used by gateway" in err.reason


def test_console_identity_clashes_with_a_device(tmp_path):
    text = BASE.replace("{id: lane-1, kind: checkout}",
                        "{id: lane-1, kind: checkout, console: true}")
    err = _error(tmp_path, text + "  - {id: lane-1-con, kind: checkout}\n")
    assert err.key == "devices[3].id" and "duplicate id 'lane-1-con'" in err.reason


def test_section_of_another_kind_refused(tmp_path):
    err = _error(tmp_path, BASE.replace("{id: lane-1, kind: checkout}",
                                        "{id: lane-1, kind: checkout, door: {relay_pin: 4}}"))
    assert err.key == "devices[0].door" and err.line == 5
    assert "given for a checkout device" in err.reason


def test_freezer_without_units(tmp_path):
    err = _error(tmp_path, BASE + "  - {id: fz-2, kind: freezer}\n")
    assert err.key == "devices[3].freezer" and "missing" in err.reason


@pytest.mark.parametrize("old,new,key,words", [
    ("host: 10.0.0.2}", "host: 10.0.0.2, broker_port: 99999}", "gateway.broker_port",
     "above the maximum 65535"),
    ("relay_pin: 17", "relay_pin: 40", "devices[2].door.relay_pin", "above the maximum 27"),
    ("contact_pin: 27", "contact_pin: 17", "devices[2].door.relay_pin", "share a pin"),
    ("28-00000a1b2c3d", "28-XYZ", "devices[1].freezer.units.u1.probes.top", "ROM id"),
    ("kind: checkout", "kind: toaster", "devices[0].kind", "not one of"),
    ("{id: lane-1, kind: checkout}", "{kind: checkout}", "devices[0].id", "missing"),
    ("id: store-1", "id: gw-1", "store_server.id", "also the gateway"),
])
def test_bad_values(tmp_path, old, new, key, words):
    assert old in BASE
    err = _error(tmp_path, BASE.replace(old, new))
    assert err.key == key and words in err.reason and err.line is not None


def test_console_id_too_long(tmp_path):
    long_id = "a" * 30
    err = _error(tmp_path, BASE.replace("{id: lane-1, kind: checkout}",
                                        f"{{id: {long_id}, kind: checkout, console: true}}"))
    assert err.key == "devices[0].id" and "too long" in err.reason


def test_missing_file_one_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_manifest(tmp_path / "nope.yaml")
    assert "cannot read the manifest" in str(info.value)
