"""Fast checks of the image definitions (images/): no root, no network, no qemu.

Every layer and kind parses, every named layer exists, the generated boot files carry the
serial console and watchdog settings, RAUC's system.conf and the genimage layout agree, and the
systemd units pass ``systemd-analyze verify`` where systemd-analyze is installed.
"""
from __future__ import annotations

import configparser
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
KINDS = ("checkout", "dock-door", "freezer", "gateway")
CONCERNS = ("base", "serial-console", "watchdog", "readonly-root", "storeedge-app", "broker",
            "update-client")


def _load_imagegen():
    spec = importlib.util.spec_from_file_location("storeedge_imagegen", IMAGES / "imagegen.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look the module up while loading
    spec.loader.exec_module(module)
    return module


imagegen = _load_imagegen()


@pytest.fixture(scope="module", params=KINDS)
def rendered(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"gen-{request.param}")
    image = imagegen.render(request.param, out, version="1.2.3-test")
    return image, out


def test_every_kind_and_layer_parses_and_names_existing_layers():
    assert set(imagegen.list_kinds()) == set(KINDS)
    assert set(CONCERNS) <= set(imagegen.list_layers())
    report = imagegen.check_all()
    assert len(report) == len(KINDS)
    for kind in KINDS:
        image = imagegen.load_kind(kind)
        for layer in image.layer_names():
            assert (IMAGES / "layers" / f"{layer}.yaml").is_file()
        for layer in image.layers:
            for script in layer.scripts:
                assert (IMAGES / "layers" / layer.name / script).is_file()
    gateway = imagegen.load_kind("gateway")
    assert "broker" in gateway.layer_names() and "mosquitto" in gateway.packages
    assert "broker" not in imagegen.load_kind("freezer").layer_names()


def test_definition_errors_name_the_problem(tmp_path, monkeypatch):
    kinds = tmp_path / "kinds"
    kinds.mkdir()
    monkeypatch.setattr(imagegen, "KINDS_DIR", kinds)
    (kinds / "bad.yaml").write_text(yaml.safe_dump(
        {"kind": "bad", "app": "freezer", "layers": ["base", "no-such-layer"]}))
    with pytest.raises(imagegen.DefinitionError, match="no-such-layer"):
        imagegen.load_kind("bad")
    (kinds / "bad.yaml").write_text(yaml.safe_dump(
        {"kind": "bad", "app": "freezer", "layers": ["watchdog", "base"]}))
    with pytest.raises(imagegen.DefinitionError, match="requires"):
        imagegen.load_kind("bad")
    (kinds / "bad.yaml").write_text(yaml.safe_dump(
        {"kind": "bad", "app": "freezer", "layers": ["base"], "partitons": {}}))
    with pytest.raises(imagegen.DefinitionError, match="partitons"):
        imagegen.load_kind("bad")


def test_boot_files_have_serial_console_and_watchdog(rendered):
    image, out = rendered
    config = (out / "boot/config.txt").read_text().splitlines()
    assert config.count("enable_uart=1") == 1
    assert "arm_64bit=1" in config and "dtparam=watchdog=on" in config
    assert [line for line in config if line.startswith("os_prefix=")] == ["os_prefix=slot-a/"]
    for slot, part in (("a", "02"), ("b", "03")):
        text = (out / f"boot/slot-{slot}/cmdline.txt").read_text()
        assert text.endswith("\n") and text.count("\n") == 1, "cmdline.txt must be one line"
        args = text.split()
        assert "console=serial0,115200" in args
        # serial0 last: it becomes /dev/console (emergency shell, systemd status) on the header
        assert [a for a in args if a.startswith("console=")][-1] == "console=serial0,115200"
        assert "bcm2835_wdt.nowayout=1" in args and "panic=10" in args and "ro" in args
        assert f"root=PARTUUID={imagegen.DISK_SIGNATURE}-{part}" in args
        assert f"rauc.slot={slot.upper()}" in args
    shipped = out / "rootfs/usr/lib/storeedge/boot"
    assert (shipped / "cmdline-B.txt").read_text() == (out / "boot/slot-b/cmdline.txt").read_text()
    watchdog = (IMAGES / "layers/watchdog/rootfs/etc/systemd/system.conf.d/"
                "20-storeedge-watchdog.conf").read_text()
    assert "RuntimeWatchdogSec=15s" in watchdog


def test_app_unit_is_supervised_by_the_watchdog(rendered):
    image, out = rendered
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(IMAGES / "layers/storeedge-app/rootfs/etc/systemd/system/storeedge@.service")
    service = unit["Service"]
    assert service["Type"] == "notify" and service["WatchdogSec"] == "30s"
    assert service["Restart"] == "always" and service["NotifyAccess"] == "main"
    assert "--config /data/storeedge/%i.yaml" in service["ExecStart"]
    assert f"storeedge@{image.app}.service" in (out / "units-enable.txt").read_text().split()


def test_dock_door_lock_is_driven_locked_before_and_after_the_app():
    image = imagegen.load_kind("dock-door")
    config = imagegen.render_config_txt(image)
    assert "gpio=17=op,dl" in config.splitlines()
    dropin = imagegen.render_unit_dropin(image)
    assert "ExecStartPre=+/usr/lib/storeedge/gpio-safe 17 0" in dropin
    assert "ExecStopPost=+/usr/lib/storeedge/gpio-safe 17 0" in dropin
    assert "gpio=" not in imagegen.render_config_txt(imagegen.load_kind("freezer"))


def test_rauc_system_conf_and_layout_agree(rendered):
    image, out = rendered
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(out / "rootfs/etc/rauc/system.conf")
    assert conf["system"]["compatible"] == f"storeedge-{image.kind}"
    assert conf["system"]["bootloader"] == "custom"
    assert conf["system"]["data-directory"].startswith("/data/")
    backend = conf["handlers"]["bootloader-custom-backend"]
    assert (IMAGES / "layers/update-client/rootfs" / backend.lstrip("/")).is_file()
    slots = {conf[s]["bootname"]: conf[s]["device"] for s in conf.sections()
             if s.startswith("slot.rootfs.")}
    sig = imagegen.DISK_SIGNATURE
    assert slots == {"A": f"/dev/disk/by-partuuid/{sig}-02",
                     "B": f"/dev/disk/by-partuuid/{sig}-03"}
    genimage = (out / "genimage.cfg").read_text()
    order = [genimage.index(f"partition {name} ") for name in ("boot", "rootA", "rootB", "data")]
    assert order == sorted(order)
    assert f"disk-signature = 0x{sig}" in genimage
    manifest = configparser.ConfigParser(interpolation=None)
    manifest.read(out / "bundle/manifest.raucm")
    assert manifest["update"]["compatible"] == conf["system"]["compatible"]
    assert manifest["update"]["version"] == "1.2.3-test"
    assert manifest["image.rootfs"]["hooks"] == "post-install"
    fstab = (out / "rootfs/etc/fstab").read_text()
    assert f"PARTUUID={sig}-04\t/data\text4" in fstab
    assert not any(line.split()[1] == "/" for line in fstab.splitlines() if line.strip()
                   and not line.startswith("#")), "/ must stay as the kernel mounted it (ro)"
    for line in fstab.splitlines():       # systemd 252 gives a device 90 s unless told
        if line.startswith("PARTUUID="):     # (an emergency boot at qemu load 17)
            assert "x-systemd.device-timeout=5min" in line.split()[3], line


def test_default_app_config_passes_the_apps_own_validation(rendered):
    """The config seeded onto /data on first boot is accepted by the app itself."""
    image, out = rendered
    path = out / f"rootfs/usr/share/storeedge/defaults/{image.app}.yaml"
    data = yaml.safe_load(path.read_text())
    assert data["device"]["kind"] == image.device_kind
    for key in ("outbox", "relay"):
        if key in data and "path" in str(data[key]):
            assert all(v.startswith("/data/storeedge/") for k, v in data[key].items()
                       if k.endswith("path")), data[key]
    proc = subprocess.run([sys.executable, "-m", "storeedge", image.app, "--validate-config",
                           "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if image.gpio_safe:      # the app drives the same pin the firmware holds safe
        pins = {g.pin for g in image.gpio_safe}
        assert data["door"]["relay"]["pin"] in pins
        assert data["door"]["relay"]["active_high"] is True and \
            all(g.level == "low" for g in image.gpio_safe)


def _verify_root(tmp_path: Path, out: Path, image) -> Path:
    """A root with the host's systemd units, our overlays, and stubs for binaries built later."""
    root = tmp_path / "root"
    for unit_dir in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if os.path.isdir(unit_dir):
            shutil.copytree(unit_dir, root / "usr/lib/systemd/system", symlinks=True,
                            dirs_exist_ok=True)
            break
    for layer in image.layer_names():
        overlay = IMAGES / "layers" / layer / "rootfs"
        if overlay.is_dir():
            shutil.copytree(overlay, root, dirs_exist_ok=True)
    shutil.copytree(out / "rootfs", root, dirs_exist_ok=True)
    for stub in ("opt/storeedge/venv/bin/storeedge", "usr/bin/rauc", "usr/sbin/mosquitto",
                 "usr/bin/gpioset", "sbin/wpa_supplicant"):
        path = root / stub
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
    return root


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (the issue: verify where available)")
def test_units_pass_systemd_analyze_verify(rendered, tmp_path):
    image, out = rendered
    root = _verify_root(tmp_path, out, image)
    system = root / "etc/systemd/system"
    shutil.copy(system / "storeedge@.service", system / image.unit)   # verify the instance
    units = sorted(p.name for p in system.glob("*.service"))
    assert image.unit in units and "storeedge-console.service" in units
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no",
                           *[f"/etc/systemd/system/{u}" for u in units]],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 0 and not problems, "\n".join(problems)


def test_verify_catches_a_broken_unit(tmp_path):
    """The verify check above can fail: a unit with a bad setting is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nType=notifyy\nExecStart=/bin/true\n")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert "notifyy" in proc.stdout + proc.stderr


@pytest.mark.skipif(not all(shutil.which(t) for t in ("rauc", "openssl", "mksquashfs")),
                    reason="rauc/openssl/squashfs-tools not installed (images/install-build-deps)")
def test_bundle_signed_by_dev_ca_verifies_only_with_that_ca(tmp_path):
    """make-dev-ca + the rendered manifest + the hook make a bundle RAUC accepts, and only
    with the CA that signed it (the same commands images/build runs, on a tiny root)."""
    pki, other = tmp_path / "pki", tmp_path / "other"
    for folder in (pki, other):
        subprocess.run([str(IMAGES / "make-dev-ca"), str(folder)], check=True,
                       capture_output=True, timeout=60)
    content = tmp_path / "bundle"
    image = imagegen.load_kind("gateway")
    content.mkdir()
    (content / "manifest.raucm").write_text(imagegen.render_manifest(image, "9.9.9"))
    shutil.copy(IMAGES / "rauc/hook", content / "hook")
    (content / "rootfs.ext4").write_bytes(os.urandom(256 * 1024))
    bundle = tmp_path / "gateway.raucb"
    made = subprocess.run(["rauc", "bundle", f"--cert={pki}/signing.cert.pem",
                           f"--key={pki}/signing.key.pem", f"--keyring={pki}/ca.cert.pem",
                           str(content), str(bundle)], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    good = subprocess.run(["rauc", "info", f"--keyring={pki}/ca.cert.pem", str(bundle)],
                          capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    assert "'storeedge-gateway'" in good.stdout and "'9.9.9'" in good.stdout
    bad = subprocess.run(["rauc", "info", f"--keyring={other}/ca.cert.pem", str(bundle)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "signature verification failed" in bad.stderr
    # RAUC itself accepts every kind's system.conf (it rejects unknown keys and bad values).
    for kind in KINDS:
        conf = tmp_path / f"{kind}-system.conf"
        conf.write_text(imagegen.render_system_conf(imagegen.load_kind(kind)))
        loaded = subprocess.run(["rauc", f"--conf={conf}", f"--keyring={pki}/ca.cert.pem",
                                 "info", str(bundle)], capture_output=True, text=True, timeout=60)
        assert loaded.returncode == 0, f"{kind}: {loaded.stderr}"


def test_serial_console_owns_serial0(rendered):
    image, out = rendered
    unit = (IMAGES / "layers/serial-console/rootfs/etc/systemd/system/"
            "storeedge-console.service").read_text()
    assert "storeedge console --port /dev/serial0 --config /data/storeedge/${STOREEDGE_APP}.yaml" in unit
    masked = (out / "units-mask.txt").read_text().split()
    assert {"serial-getty@ttyS1.service", "serial-getty@ttyAMA0.service"} <= set(masked)
    assert "storeedge-console.service" in (out / "units-enable.txt").read_text().split()
    rules = (IMAGES / "layers/serial-console/rootfs/etc/udev/rules.d/"
             "70-storeedge-serial0.rules").read_text()
    assert 'SYMLINK+="serial0"' in rules


BACKPORTS = ["libcamera0.3", "libcamera-ipa", "python3-libcamera"]


def test_only_the_checkout_camera_packages_come_from_backports(rendered):
    """The camera layer takes libcamera from bookworm-backports: the checkout image installs
    those packages and pins ONLY them there (everything else from backports at -1); the other
    kinds get no backports source and no pin (their bootstrap is what it was)."""
    image, out = rendered
    backports = (out / "backports.txt").read_text().split()
    if image.kind != "checkout":
        assert backports == [] and not (out / "apt-preferences").exists()
        assert not set(BACKPORTS) & set(image.packages)
        return
    assert backports == BACKPORTS
    assert set(BACKPORTS) <= set((out / "packages.txt").read_text().split())
    records = [dict(line.split(": ", 1) for line in block.splitlines()
                    if line and not line.startswith("#"))
               for block in (out / "apt-preferences").read_text().split("\n\n") if block.strip()]
    assert [(r["Package"], r["Pin"], r["Pin-Priority"]) for r in records] == [
        (" ".join(BACKPORTS), "release n=bookworm-backports", "990"),
        ("*", "release n=bookworm-backports", "-1")]


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="apt-cache is not installed")
def test_apt_accepts_the_generated_pin_file(tmp_path):
    """apt parses the pin file without a warning or error (it reports a bad record as E:)."""
    out, parts = tmp_path / "gen", tmp_path / "preferences.d"
    parts.mkdir()
    imagegen.render("checkout", out)

    def policy(pref: Path) -> str:
        proc = subprocess.run(["apt-cache", "-o", f"Dir::Etc::Preferences={pref}",
                               "-o", f"Dir::Etc::PreferencesParts={parts}", "policy"],
                              capture_output=True, text=True, timeout=120)
        return proc.stderr

    assert policy(out / "apt-preferences") == ""
    bad = tmp_path / "bad.pref"
    bad.write_text("Package: libcamera0.3\nPin: release n=bookworm-backports\n")  # no priority
    assert "E: No priority" in policy(bad)


def test_backports_names_are_plain_package_names(tmp_path, monkeypatch):
    layers = tmp_path / "layers"
    layers.mkdir()
    monkeypatch.setattr(imagegen, "LAYERS_DIR", layers)
    for bad in ("python3-libcamera/bookworm-backports", "libcamera0.3=0.3.2-1", "libcamera*"):
        (layers / "cam.yaml").write_text(yaml.safe_dump(
            {"description": "x", "backports": [bad]}))
        with pytest.raises(imagegen.DefinitionError, match="not plain Debian package names"):
            imagegen.load_layer("cam")
    (layers / "cam.yaml").write_text(yaml.safe_dump({"description": "x", "backports": BACKPORTS}))
    assert imagegen.load_layer("cam").backports == BACKPORTS
