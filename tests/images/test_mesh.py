"""The batman-adv mesh layers (images/layers/mesh*, fast checks: no build, no qemu).

The mesh itself runs on the images; here we check what can be checked without one: which kinds
join it, that the gateway's bat0 file replaces the devices' (layers are copied in order), the
networkd files say what the docs say, and the start check refuses a missing, readable or
non-SAE mesh config with a clear message. The routing over a mesh hop is exercised by the
network fault rig (tests/faults: a device two hops from the gateway through another device).
"""
from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parents[2] / "images"
LAYERS = IMAGES / "layers"
CHECK = LAYERS / "mesh" / "rootfs" / "usr/lib/storeedge/mesh-check"
GOOD = """network={
    ssid="s0042-mesh"
    mode=5
    frequency=2437
    key_mgmt=SAE
    sae_password="correct horse battery staple"
    mesh_fwding=0
}
"""


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False)
    parser.optionxform = str
    parser.read(path)
    return parser


def _layers(kind: str) -> list[str]:
    import yaml
    return yaml.safe_load((IMAGES / "kinds" / f"{kind}.yaml").read_text())["layers"]


def test_freezers_doors_and_the_gateway_join_the_mesh_checkout_lanes_are_wired():
    assert "mesh" in _layers("freezer") and "mesh" in _layers("dock-door")
    gateway = _layers("gateway")
    assert gateway.index("mesh") < gateway.index("mesh-gateway")
    assert "mesh" not in _layers("checkout")


def test_bat0_is_batman_adv_over_wlan0():
    netdev = _ini(LAYERS / "mesh/rootfs/etc/systemd/network/10-bat0.netdev")
    assert netdev["NetDev"]["Kind"] == "batadv" and netdev["NetDev"]["Name"] == "bat0"
    wlan = _ini(LAYERS / "mesh/rootfs/etc/systemd/network/20-wlan0-mesh.network")
    assert wlan["Match"]["Name"] == "wlan0" and wlan["Network"]["BatmanAdvanced"] == "bat0"
    modules = (LAYERS / "mesh/rootfs/etc/modules-load.d/batman-adv.conf").read_text()
    assert "batman-adv" in modules.split()


def test_the_gateway_serves_dhcp_on_bat0_and_devices_ask_for_it():
    name = "etc/systemd/network/30-bat0.network"
    device, gateway = _ini(LAYERS / "mesh/rootfs" / name), _ini(LAYERS / "mesh-gateway/rootfs" / name)
    assert device["Network"]["DHCP"] == "ipv4"
    assert gateway["Network"]["DHCPServer"] == "yes"
    assert gateway["Network"]["Address"] == "10.77.0.1/16"


def _check(conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(CHECK), str(conf)], capture_output=True, text=True,
                          timeout=10)


def test_the_mesh_starts_only_with_a_private_sae_config(tmp_path):
    conf = tmp_path / "mesh.conf"
    missing = _check(conf)
    assert missing.returncode == 1 and "no mesh config" in missing.stderr
    conf.write_text(GOOD)
    conf.chmod(0o644)
    readable = _check(conf)
    assert readable.returncode == 1 and "chmod 600" in readable.stderr
    conf.chmod(0o600)
    assert _check(conf).returncode == 0, _check(conf).stderr


@pytest.mark.parametrize("wrong, says", [("mode=5", "802.11s"), ("key_mgmt=SAE", "SAE")])
def test_a_mesh_config_that_is_not_an_sae_mesh_is_refused(tmp_path, wrong, says):
    conf = tmp_path / "mesh.conf"
    conf.write_text(GOOD.replace(wrong, "# " + wrong))
    conf.chmod(0o600)
    result = _check(conf)
    assert result.returncode == 1 and says in result.stderr
