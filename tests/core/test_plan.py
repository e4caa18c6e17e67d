"""``storeedge store plan``: every file a store needs, valid for its app; re-plans change only
what changed; removed devices are revoked; kind changes and foreign PKIs refused."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from storeedge.firmware.checkout.config import CheckoutConfig
from storeedge.config import load_config
from storeedge.exc import ConfigError
from storeedge.firmware.console.secret import parse_hash, verify_secret
from storeedge.firmware.dock_door.config import DoorConfig
from storeedge.firmware.freezer.config import FreezerConfig
from storeedge.firmware.gateway.config import GatewayConfig
from storeedge.exc import PKIError
from storeedge.pki import StorePKI
from storeedge.plan import plan
from storeedge.server.config import StoreServerConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "store-12-lanes.yaml"
CLASSES = {"checkout": CheckoutConfig, "freezer": FreezerConfig, "dock_door": DoorConfig}

SMALL = """\
store: {id: s0042}
gateway: {id: gw-1, host: 10.0.0.2}
store_server: {id: store-1, host: 10.0.0.3, broker_port: 9884}
devices:
  - {id: lane-1, kind: checkout, location: lane 1}
  - id: fz-1
    kind: freezer
    console: true
    freezer:
      units: {u1: {probes: {top: 28-00000a1b2c3d}, door_pin: 5}}
  - {id: door-1, kind: dock_door, door: {relay_pin: 17, contact_pin: 27, rex_pin: 22}}
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def example_plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "s0042"
    return out, plan(EXAMPLE, out)


def test_example_plan_writes_valid_configs(example_plan):
    out, report = example_plan
    assert len(report.enrolled) == 42 and not report.changed and not report.removed
    for dev_dir in sorted((out / "devices").iterdir()):
        cfg_path = dev_dir / "config.yaml"
        text = cfg_path.read_text()
        kind = next(k for k in CLASSES if f"kind: {k}\n" in text)
        cfg = load_config(cfg_path, CLASSES[kind])
        assert cfg.device.id == dev_dir.name and cfg.device.store == "s0042"
        assert cfg.link.url == "mqtts://10.42.0.2:8883"
        assert cfg.link.tls_cert == f"/data/identity/{dev_dir.name}.crt"
    gw = load_config(out / "gateway" / "config.yaml", GatewayConfig)
    assert gw.upstream.url == "mqtts://10.42.0.3:8884"
    devices = [f"lane-{i:02d}" for i in range(1, 13)] + \
        [f"fz-{i:02d}" for i in range(1, 7)] + ["door-1", "door-2"]
    assert gw.relay.devices == [x for d in devices for x in (d, f"{d}-con")]
    st = load_config(out / "store-server" / "config.yaml", StoreServerConfig)
    assert st.server.id == "store-1" and st.web.port == 8080 and st.web.enabled


def test_example_plan_identities_and_brokers(example_plan):
    out, _report = example_plan
    pki = StorePKI(out / "pki")
    active = {e.id: e.kind for e in pki.active()}
    assert active["lane-03-con"] == "checkout" and active["door-2"] == "dock_door"
    for ident in ("fz-04", "fz-04-con"):
        assert _mode(pki.bundle_dir(ident) / f"{ident}.key") == 0o600
    in_store = (out / "brokers" / "in-store" / "mosquitto.acl").read_text()
    store = (out / "brokers" / "store" / "mosquitto.acl").read_text()
    assert "user lane-12\n" in in_store and "user fz-06-con\n" in in_store
    assert "topic write se/v1/s0042/freezer/fz-06-con/evt/#" in in_store
    assert "user gw-1\n" in store and "user store-1\n" in store and "lane-12" not in store
    conf = (out / "brokers" / "in-store" / "mosquitto.conf").read_text()
    assert "listener 8883 0.0.0.0" in conf and "require_certificate true" in conf
    assert "/etc/mosquitto/storeedge-in-store/mosquitto.acl" in conf
    assert _mode(out / "brokers" / "store" / "server.key") == 0o600
    assert _mode(out / "store-server" / "identity" / "e2e-master.key") == 0o600
    summary = (out / "SUMMARY.md").read_text()
    assert "| checkout + console lane-01-con | lane-01 | checkout lane 1 |" in summary
    assert summary.count("\n") < 60


def test_console_secrets_hashed_clear_once(example_plan):
    out, report = example_plan
    assert len(report.new_console_secrets) == 20
    clear = dict(line.split() for line in
                 (out / "technician" / "console-secrets.txt").read_text().splitlines())
    assert _mode(out / "technician" / "console-secrets.txt") == 0o600
    stored = (out / "devices" / "door-1" / "console.secret").read_text()
    assert clear["door-1"] not in stored and _mode(out / "devices" / "door-1" /
                                                   "console.secret") == 0o600
    assert verify_secret(clear["door-1"], parse_hash(stored.strip()))
    assert not verify_secret(clear["door-2"], parse_hash(stored.strip()))


def test_replan_changes_only_what_changed(tmp_path):
    man, out = tmp_path / "store.yaml", tmp_path / "out"
    man.write_text(SMALL)
    first = plan(man, out)
    assert sorted(first.enrolled) == ["door-1", "fz-1", "fz-1-con", "gw-1", "lane-1", "store-1"]
    secret = (out / "devices" / "fz-1" / "console.secret").read_bytes()
    again = plan(man, out)
    assert (again.added, again.changed, again.removed, again.enrolled, again.revoked) == \
        ([], [], [], [], [])
    man.write_text(SMALL.replace("  - {id: lane-1, kind: checkout, location: lane 1}\n", "")
                   .replace("rex_pin: 22", "rex_pin: 23")
                   + "  - {id: lane-2, kind: checkout}\n")
    third = plan(man, out)
    assert third.revoked == ["lane-1"] and third.enrolled == ["lane-2"]
    assert third.removed == ["devices/lane-1/config.yaml"]
    assert third.added == ["devices/lane-2/config.yaml"]
    assert set(third.changed) == {"devices/door-1/config.yaml", "gateway/config.yaml",
                                  "brokers/in-store/crl.pem", "brokers/in-store/mosquitto.acl",
                                  "brokers/store/crl.pem", "SUMMARY.md"}
    assert not (out / "devices" / "lane-1").exists()
    assert StorePKI(out / "pki").get("lane-1").revoked
    assert "lane-1" not in (out / "brokers" / "in-store" / "mosquitto.acl").read_text()
    assert (out / "devices" / "fz-1" / "console.secret").read_bytes() == secret
    assert load_config(out / "devices" / "door-1" / "config.yaml", DoorConfig).door.rex.pin == 23


def test_local_plan_uses_simulated_parts_and_paths_inside(tmp_path):
    man, out = tmp_path / "store.yaml", tmp_path / "out"
    man.write_text(SMALL)
    plan(man, out, local=True)
    fz = load_config(out / "devices" / "fz-1" / "config.yaml", FreezerConfig)
    assert fz.freezer.onewire.backend == "sim" and fz.freezer.units["u1"].door.pin == 5
    assert fz.link.url == "mqtts://127.0.0.1:8883"
    assert Path(fz.link.tls_key).is_file() and Path(fz.security.e2e_key).is_file()
    assert fz.outbox.path.startswith(str(out.resolve()))
    lane = load_config(out / "devices" / "lane-1" / "config.yaml", CheckoutConfig)
    assert (lane.checkout.camera.type, lane.checkout.pos.type) == ("synthetic", "synthetic")
    door = load_config(out / "devices" / "door-1" / "config.yaml", DoorConfig)
    assert door.door.gpio_backend == "mock" and door.door.rex.pin == 22
    st = load_config(out / "store-server" / "config.yaml", StoreServerConfig)
    assert Path(st.security.e2e_master).is_file() and st.web.host == "127.0.0.1"
    conf = (out / "brokers" / "store" / "mosquitto.conf").read_text()
    assert f"acl_file {out.resolve()}/brokers/store/mosquitto.acl" in conf
    assert "listener 9884 127.0.0.1" in conf


def test_kind_change_refused_with_key_and_line(tmp_path):
    man, out = tmp_path / "store.yaml", tmp_path / "out"
    man.write_text(SMALL)
    plan(man, out)
    man.write_text(SMALL.replace("{id: door-1, kind: dock_door, door: {relay_pin: 17, "
                                 "contact_pin: 27, rex_pin: 22}}", "{id: door-1, kind: checkout}"))
    with pytest.raises(ConfigError) as info:
        plan(man, out)
    err = info.value
    assert err.key == "devices[2].kind" and err.line == 11
    assert "door-1 is enrolled as dock_door" in err.reason and "revoke" in err.reason
    assert not StorePKI(out / "pki").get("door-1").revoked


def test_pki_of_another_store_refused(tmp_path):
    man, out = tmp_path / "store.yaml", tmp_path / "out"
    StorePKI.init(out / "pki", "s0099")
    man.write_text(SMALL)
    with pytest.raises(PKIError, match="PKI of store s0099, the manifest says store.id s0042"):
        plan(man, out)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storeedge", "store", *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_cli_plan_and_one_line_error(tmp_path):
    man = tmp_path / "store.yaml"
    man.write_text(SMALL)
    ok = _cli("plan", str(man), str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    assert "enrolled fz-1-con" in ok.stdout and "console secret of fz-1: " in ok.stdout
    assert ok.stdout.strip().splitlines()[-1].startswith("console secret of fz-1")
    man.write_text(SMALL.replace("broker_port: 9884", "broker_port: 99999"))
    bad = _cli("plan", str(man), str(tmp_path / "out"))
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "store_server.broker_port (line 3): 99999 is above the maximum 65535" in bad.stderr
