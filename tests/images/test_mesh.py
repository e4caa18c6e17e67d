"""The batman-adv mesh layers (images/layers/mesh*, fast checks: no build, no qemu).

The mesh itself runs on the images; here we check what can be checked without one: which kinds
join it, that the gateway's bat0 file replaces the devices' (layers are copied in order), the
networkd files say what the docs say, and the start check refuses a missing, readable or
non-SAE mesh config with a clear message; the wired mesh link (a device told in
/data/identity/mesh-wired to enslave eth1 to bat0), the self-test's reading of batctl, and
qemu-boot's mesh segment and monitor. batman-adv itself runs in qemu
(tests/images/test_mesh_qemu.py, ``-m image``); routing over a mesh hop is also exercised by
the network fault rig (tests/faults: a device two hops from the gateway through another one).
"""
from __future__ import annotations

import configparser
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers.imagelib import load_script

IMAGES = Path(__file__).resolve().parents[2] / "images"
LAYERS = IMAGES / "layers"
CHECK = LAYERS / "mesh" / "rootfs" / "usr/lib/storeedge/mesh-check"
WIRED = LAYERS / "mesh" / "rootfs" / "usr/lib/storeedge/mesh-wired"
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


def _wired(conf: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(WIRED), str(conf), str(out), "--no-reload"],
                          capture_output=True, text=True, timeout=10)


def test_a_device_told_to_enslaves_its_wired_port_to_bat0(tmp_path):
    conf, out = tmp_path / "mesh-wired", tmp_path / "run-network"
    conf.write_text("# cable to freezer-2\neth1   # the back room\n\n eth2\n")
    result = _wired(conf, out)
    assert result.returncode == 0, result.stderr
    assert "eth1 joins bat0" in result.stderr and "eth2 joins bat0" in result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["10-mesh-wired-eth1.network", "10-mesh-wired-eth2.network"]
    net = _ini(out / files[0])
    assert net["Match"]["Name"] == "eth1" and net["Network"]["BatmanAdvanced"] == "bat0"
    assert net["Network"]["IgnoreCarrierLoss"] == "yes"     # a flapping cable stays enslaved
    # networkd takes the first file (by name) that matches: it must sort before the base
    # layer's DHCP file for eth0, so eth0 too can be a mesh cable.
    base = sorted((LAYERS / "base/rootfs/etc/systemd/network").glob("*.network"))
    assert files[0] < min(p.name for p in base)


@pytest.mark.parametrize("line, says", [("eth1;reboot", "not an interface name"),
                                        ("eth*", "not an interface name"),
                                        ("a-very-long-interface", "not an interface name"),
                                        ("bat0", "cannot be a wired mesh interface")])
def test_a_bad_wired_mesh_list_is_refused_and_nothing_joins(tmp_path, line, says):
    conf, out = tmp_path / "mesh-wired", tmp_path / "run-network"
    (tmp_path / "eth-decoy").write_text("")          # a glob must not expand to a file name
    conf.write_text(f"eth1\n{line}\n")
    result = subprocess.run(["sh", str(WIRED), str(conf), str(out), "--no-reload"],
                            capture_output=True, text=True, timeout=10, cwd=tmp_path)
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert "no wired interface joins bat0" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_without_a_wired_mesh_list_nothing_is_written(tmp_path):
    result = _wired(tmp_path / "mesh-wired", tmp_path / "out")
    assert result.returncode == 0 and "no wired mesh list" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_wired_mesh_unit_runs_only_when_told_and_is_enabled():
    unit = _ini(LAYERS / "mesh/rootfs/etc/systemd/system/storeedge-mesh-wired.service")
    assert unit["Unit"]["ConditionPathExists"] == "/data/identity/mesh-wired"
    assert "systemd-networkd.service" in unit["Unit"]["After"]
    assert unit["Service"]["ExecStart"].split() == [
        "/usr/lib/storeedge/mesh-wired", "/data/identity/mesh-wired", "/run/systemd/network"]
    import yaml
    layer = yaml.safe_load((LAYERS / "mesh.yaml").read_text())
    assert "storeedge-mesh-wired.service" in layer["units"]["enable"]


BATCTL_N = """        eth1\t  02:00:00:00:00:02    0.424s (        1.0)
       wlan0\t  dc:a6:32:01:02:03   12.100s (       54.2)
"""
BATCTL_O = """ * 02:00:00:00:00:02    0.824s (        1.0)  02:00:00:00:00:02 [      eth1]
   dc:a6:32:0a:0b:0c    1.024s (        0.9)  dc:a6:32:01:02:03 [     wlan0]
 * dc:a6:32:0a:0b:0c    1.024s (        0.9)  02:00:00:00:00:02 [      eth1]
"""


def test_the_self_test_reads_neighbours_and_best_originators_from_batctl(monkeypatch):
    selftest = load_script("mesh_selftest", LAYERS / "base/rootfs/usr/lib/storeedge/selftest")
    canned = {"n": BATCTL_N, "o": BATCTL_O}
    monkeypatch.setattr(selftest, "run", lambda *cmd: (0, canned[cmd[1]]))
    neigh = selftest.batctl_rows("n")
    assert [(r["mac"], r["if"], r["seen_s"]) for r in neigh] == [
        ("02:00:00:00:00:02", "eth1", 0.424), ("dc:a6:32:01:02:03", "wlan0", 12.1)]
    orig = selftest.batctl_rows("o")
    assert [(r["mac"], r["via"], r["if"]) for r in orig] == [
        ("02:00:00:00:00:02", "02:00:00:00:00:02", "eth1"),
        ("dc:a6:32:0a:0b:0c", "02:00:00:00:00:02", "eth1")]   # two hops, through eth1


def _qemu_boot():
    return load_script("mesh_qemu_boot", IMAGES / "qemu-boot")


def test_qemu_boot_puts_a_second_nic_on_a_loopback_multicast_segment(tmp_path):
    qb = _qemu_boot()
    a = qb.default_mesh_mac("freezer", tmp_path / "a.img")
    b = qb.default_mesh_mac("freezer", tmp_path / "b.img")
    assert a != b and int(a[:2], 16) & 0b11 == 0b10       # unicast, locally administered
    args = qb.mesh_args(qb.mesh_nic(47000, a))
    assert "socket,id=mesh0,mcast=230.0.0.1:47000,localaddr=127.0.0.1" in args
    assert f"virtio-net-pci,netdev=mesh0,mac={a},romfile=" in args
    for port, mac in [(80, a), (47000, "01:00:5e:00:00:01"), (47000, "02:00:00:00:00")]:
        with pytest.raises(SystemExit, match="qemu-boot: --mesh-"):
            qb.mesh_nic(port, mac)


def test_qemu_boot_keeps_powering_off_unless_asked_to_keep_running():
    qb = _qemu_boot()
    default = qb.qemu_cmdline("ro console=serial0,115200", [], selftest=True).split()
    assert "storeedge.selftest.poweroff=1" in default and "console=serial0,115200" not in default
    kept = qb.qemu_cmdline("ro", [], selftest=True, poweroff=False, mesh_watch=3).split()
    assert "storeedge.selftest=1" in kept and "storeedge.selftest.poweroff=1" not in kept
    assert "storeedge.selftest.mesh_watch=3" in kept


@pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None,
                    reason="qemu-system-aarch64 not installed (images/install-build-deps --qemu)")
def test_the_monitor_fails_and_restores_the_mesh_link(tmp_path):
    """A real qemu, paused before its first instruction (-S: no guest, no CPU spent): the
    monitor takes set_link for the mesh NIC and refuses an unknown one."""
    qb = _qemu_boot()
    sock = tmp_path / "mon"
    argv = ["qemu-system-aarch64", "-M", "virt", "-S", "-nographic", "-nodefaults",
            *qb.mesh_args(qb.mesh_nic(_free_udp_port(), "02:00:00:00:00:01")),
            *qb.monitor_args(sock)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert sock.exists(), proc.stderr.read().decode() if proc.poll() is not None else ""
        assert "mesh0: index=0,type=socket" in qb.monitor_command(sock, "info network")
        # qemu answers nothing when it took the command (7.2's "info network" does not show
        # the link state: what the guest sees is checked in test_mesh_qemu.py).
        assert qb.set_link(sock, up=False) == ""
        assert qb.set_link(sock, up=True) == ""
        assert "not found" in qb.monitor_command(sock, "set_link nosuchnic off")
    finally:
        proc.kill()
        proc.wait(30)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
