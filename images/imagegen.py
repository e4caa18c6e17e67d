#!/usr/bin/env python3
"""Image definitions: load, check and render them (no root, no network, only PyYAML).

The image of a device kind is a stack of *layers* (``images/layers/<name>.yaml``, each with an
optional ``images/layers/<name>/rootfs/`` overlay) named by a *kind* definition
(``images/kinds/<kind>.yaml``).  This module resolves a kind into one :class:`Image` and renders
every generated file the build needs:

* the boot partition: ``config.txt`` (``enable_uart=1``, ``os_prefix=slot-a/``) and one
  ``cmdline.txt`` per slot (``console=serial0,115200``, ``root=PARTUUID=<disk>-0N``,
  ``rauc.slot=A|B``, the watchdog's ``nowayout``);
* the root overlay: RAUC ``system.conf``, ``fstab``, the app's default config, unit drop-ins;
* the genimage layout (boot, root A, root B, data) and the RAUC bundle manifest;
* for a kind whose layers take packages from ``<suite>-backports`` (layer key ``backports``),
  the apt pin (``apt-preferences``) that lets ONLY those packages come from there.

``images/build`` calls ``python3 images/imagegen.py render <kind> <outdir>``; the fast test
imports this module directly.

Example::

    python3 images/imagegen.py list
    python3 images/imagegen.py check
    python3 images/imagegen.py render freezer images/out/freezer/gen
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
LAYERS_DIR = HERE / "layers"
KINDS_DIR = HERE / "kinds"

#: MBR disk signature: partitions are ``PARTUUID=<sig>-01`` .. ``-04`` on a Pi and under qemu.
DISK_SIGNATURE = "5e0de0a1"
PART_BOOT, PART_ROOT_A, PART_ROOT_B, PART_DATA = 1, 2, 3, 4
SLOTS = {"A": (PART_ROOT_A, "slot-a/"), "B": (PART_ROOT_B, "slot-b/")}
DEBIAN_SUITE = "bookworm"
BACKPORTS_SUITE = f"{DEBIAN_SUITE}-backports"
IDENTITY_DIR = "/data/identity"      # the provisioned device bundle (docs/images.md)

LAYER_KEYS = {"description", "requires", "packages", "build_packages", "python_packages",
              "units", "boot", "scripts", "backports"}
KIND_KEYS = {"kind", "description", "app", "device_kind", "compatible", "hostname", "layers",
             "boot", "partitions", "app_config", "gpio_safe", "unit_environment"}
UNIT_KEYS = {"enable", "mask"}
BOOT_KEYS = {"config", "cmdline"}
PARTITION_KEYS = {"boot_mib", "root_mib", "data_mib"}
GPIO_KEYS = {"pin", "level", "why"}
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,40}")
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")


class DefinitionError(ValueError):
    """A layer or kind definition is wrong; the message names the file and the key."""


@dataclass
class Layer:
    """One concern of an image (serial console, watchdog, read-only root, ...)."""

    name: str
    description: str
    requires: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    build_packages: list[str] = field(default_factory=list)
    enable: list[str] = field(default_factory=list)
    mask: list[str] = field(default_factory=list)
    config_lines: list[str] = field(default_factory=list)
    cmdline: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    python_packages: list[str] = field(default_factory=list)
    backports: list[str] = field(default_factory=list)

    @property
    def overlay(self) -> Path:
        """``layers/<name>/rootfs``: files copied into the root filesystem as they are."""
        return LAYERS_DIR / self.name / "rootfs"


@dataclass
class GpioSafe:
    """A pin the firmware drives to a safe level before Linux starts (config.txt ``gpio=``)."""

    pin: int
    level: str   # "low" or "high"
    why: str


@dataclass
class Image:
    """A kind resolved against its layers: everything the build needs."""

    kind: str
    description: str
    app: str
    device_kind: str
    compatible: str
    hostname: str
    layers: list[Layer]
    boot_mib: int
    root_mib: int
    data_mib: int
    app_config: dict
    gpio_safe: list[GpioSafe]
    unit_environment: dict
    extra_config: list[str]
    extra_cmdline: list[str]

    @property
    def unit(self) -> str:
        """The systemd unit that runs the app (an instance of ``storeedge@.service``)."""
        return f"storeedge@{self.app}.service"

    @property
    def packages(self) -> list[str]:
        """Debian packages installed (the backports ones included)."""
        return _unique(p for layer in self.layers for p in layer.packages + layer.backports)

    @property
    def backports(self) -> list[str]:
        """The packages taken from ``BACKPORTS_SUITE`` (and only these: the apt pin)."""
        return _unique(p for layer in self.layers for p in layer.backports)

    @property
    def build_packages(self) -> list[str]:
        keep = set(self.packages)
        return _unique(p for layer in self.layers for p in layer.build_packages if p not in keep)

    @property
    def python_packages(self) -> list[str]:
        """Extra PyPI requirements installed into the app's venv beside storeedge's own."""
        return _unique(p for layer in self.layers for p in layer.python_packages)

    @property
    def enable(self) -> list[str]:
        units = _unique(u for layer in self.layers for u in layer.enable)
        return [u.replace("@APP@", self.app) for u in units]

    @property
    def mask(self) -> list[str]:
        return _unique(u for layer in self.layers for u in layer.mask)

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]


def _unique(items) -> list:
    seen: dict = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: must be a mapping at the top level")
    return data


def _check_keys(path: Path, where: str, data: dict, allowed: set) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise DefinitionError(f"{path}: {where}unknown key(s) {unknown}; "
                              f"allowed: {sorted(allowed)}")


def _str_list(path: Path, key: str, value) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DefinitionError(f"{path}: {key} must be a list of non-empty strings")
    return list(value)


def list_layers() -> list[str]:
    return sorted(p.stem for p in LAYERS_DIR.glob("*.yaml"))


def list_kinds() -> list[str]:
    return sorted(p.stem for p in KINDS_DIR.glob("*.yaml"))


def load_layer(name: str) -> Layer:
    """Parse ``layers/<name>.yaml`` strictly (unknown keys and missing scripts are errors)."""
    path = LAYERS_DIR / f"{name}.yaml"
    if not NAME_RE.fullmatch(name):
        raise DefinitionError(f"layer name {name!r} is not a lower-case identifier")
    if not path.exists():
        raise DefinitionError(f"layer {name!r} does not exist ({path} missing); "
                              f"known layers: {', '.join(list_layers())}")
    data = _read_yaml(path)
    _check_keys(path, "", data, LAYER_KEYS)
    units = data.get("units") or {}
    boot = data.get("boot") or {}
    _check_keys(path, "units: ", units, UNIT_KEYS)
    _check_keys(path, "boot: ", boot, BOOT_KEYS)
    if not isinstance(data.get("description"), str):
        raise DefinitionError(f"{path}: description (a sentence) is required")
    layer = Layer(
        name=name, description=data["description"].strip(),
        requires=_str_list(path, "requires", data.get("requires")),
        packages=_str_list(path, "packages", data.get("packages")),
        build_packages=_str_list(path, "build_packages", data.get("build_packages")),
        enable=_str_list(path, "units.enable", units.get("enable")),
        mask=_str_list(path, "units.mask", units.get("mask")),
        config_lines=_str_list(path, "boot.config", boot.get("config")),
        cmdline=_str_list(path, "boot.cmdline", boot.get("cmdline")),
        scripts=_str_list(path, "scripts", data.get("scripts")),
        python_packages=_str_list(path, "python_packages", data.get("python_packages")),
        backports=_str_list(path, "backports", data.get("backports")),
    )
    bad = [p for p in layer.backports if not PACKAGE_RE.fullmatch(p)]
    if bad:
        raise DefinitionError(f"{path}: backports: {bad} are not plain Debian package names "
                              "(no versions, suites or wildcards)")
    for script in layer.scripts:
        if not (LAYERS_DIR / name / script).is_file():
            raise DefinitionError(f"{path}: script {script!r} not found in {LAYERS_DIR / name}")
    return layer


def _resolve_layers(path: Path, names: list[str]) -> list[Layer]:
    """Load the named layers in order; a layer's ``requires`` must come before it."""
    layers: list[Layer] = []
    for name in names:
        layer = load_layer(name)
        have = {item.name for item in layers}
        missing = [req for req in layer.requires if req not in have]
        if missing:
            raise DefinitionError(f"{path}: layer {name!r} requires {missing} listed before it")
        if name in have:
            raise DefinitionError(f"{path}: layer {name!r} listed twice")
        layers.append(layer)
    return layers


def _partitions(path: Path, data: dict) -> tuple[int, int, int]:
    parts = {"boot_mib": 256, "root_mib": 1536, "data_mib": 512, **(data.get("partitions") or {})}
    _check_keys(path, "partitions: ", parts, PARTITION_KEYS)
    for key, low in (("boot_mib", 64), ("root_mib", 512), ("data_mib", 64)):
        if not isinstance(parts[key], int) or parts[key] < low:
            raise DefinitionError(f"{path}: partitions.{key} must be an integer >= {low} (MiB)")
    return parts["boot_mib"], parts["root_mib"], parts["data_mib"]


def _gpio_safe(path: Path, items) -> list[GpioSafe]:
    out = []
    for i, item in enumerate(items or []):
        if not isinstance(item, dict):
            raise DefinitionError(f"{path}: gpio_safe[{i}] must be a mapping")
        _check_keys(path, f"gpio_safe[{i}]: ", item, GPIO_KEYS)
        pin, level = item.get("pin"), item.get("level")
        if not isinstance(pin, int) or not 0 <= pin <= 27:
            raise DefinitionError(f"{path}: gpio_safe[{i}].pin must be a header GPIO 0..27")
        if level not in ("low", "high"):
            raise DefinitionError(f"{path}: gpio_safe[{i}].level must be 'low' or 'high'")
        out.append(GpioSafe(pin=pin, level=level, why=str(item.get("why", "")).strip()))
    return out


def app_registry():
    """storeedge's app registry (``storeedge/apps.py``): the installed package's, or, when
    imagegen runs under a bare ``python3``, this checkout's with setup.py's folder mapping
    (``storeedge.firmware`` <- ``firmware/``); the spec modules need nothing else."""
    try:
        import storeedge.firmware  # noqa: F401 - installed (the venv, the image build)
    except ImportError:
        repo = str(HERE.parent)
        sys.path.insert(0, repo)
        import storeedge
        if repo not in storeedge.__path__:
            storeedge.__path__.append(repo)
    from storeedge import apps
    return apps


def _app_spec(path: Path, data: dict):
    """The registered app a kind file names (``app:``, its kind or an alias)."""
    apps = app_registry()
    try:
        spec = apps.app(str(data.get("app")))
    except apps.AppSpecError as exc:
        raise DefinitionError(f"{path}: app: {exc}") from None
    if data.get("device_kind", spec.kind) != spec.kind:
        raise DefinitionError(f"{path}: device_kind: the {data.get('app')} app's kind is "
                              f"{spec.kind!r} (better: leave device_kind out)")
    return spec


def load_kind(kind: str, kinds_dir: Path | None = None) -> Image:
    """Parse ``<kinds_dir or KINDS_DIR>/<kind>.yaml`` and resolve its layers into an :class:`Image`.

    ``app:`` names a registered storeedge app (:mod:`storeedge.apps`) by its kind or an
    alias; the image's device kind is that app's kind.
    """
    path = (kinds_dir or KINDS_DIR) / f"{kind}.yaml"
    if not path.exists():
        raise DefinitionError(f"unknown kind {kind!r}; known kinds: {', '.join(list_kinds())}")
    data = _read_yaml(path)
    _check_keys(path, "", data, KIND_KEYS)
    if data.get("kind") != kind:
        raise DefinitionError(f"{path}: kind: must be {kind!r} (the file name)")
    app = str(data.get("app"))
    spec = _app_spec(path, data)
    compatible = data.get("compatible", f"storeedge-{kind}")
    if not re.fullmatch(r"storeedge-[a-z0-9-]+", str(compatible)):
        raise DefinitionError(f"{path}: compatible must look like storeedge-<kind>")
    boot = data.get("boot") or {}
    _check_keys(path, "boot: ", boot, BOOT_KEYS)
    boot_mib, root_mib, data_mib = _partitions(path, data)
    app_config = data.get("app_config") or {}
    env = data.get("unit_environment") or {}
    if not isinstance(app_config, dict) or not isinstance(env, dict):
        raise DefinitionError(f"{path}: app_config and unit_environment must be mappings")
    return Image(
        kind=kind, description=str(data.get("description", "")).strip(), app=app,
        device_kind=spec.kind,
        compatible=compatible, hostname=str(data.get("hostname", f"storeedge-{kind}")),
        layers=_resolve_layers(path, _str_list(path, "layers", data.get("layers"))),
        boot_mib=boot_mib, root_mib=root_mib, data_mib=data_mib, app_config=app_config,
        gpio_safe=_gpio_safe(path, data.get("gpio_safe")),
        unit_environment={str(k): str(v) for k, v in env.items()},
        extra_config=_str_list(path, "boot.config", boot.get("config")),
        extra_cmdline=_str_list(path, "boot.cmdline", boot.get("cmdline")),
    )


# --------------------------------------------------------------------------- rendering

def partuuid(part: int) -> str:
    return f"{DISK_SIGNATURE}-{part:02d}"


def render_config_txt(image: Image, slot: str = "A") -> str:
    """The Pi firmware's config.txt; ``slot`` picks ``os_prefix`` (kernel, initrd, cmdline, dtb)."""
    _part, prefix = SLOTS[slot]
    lines = [f"# storeedge {image.kind} image: generated by images/imagegen.py, do not edit here.",
             "# The update backend (rauc-tryboot-backend) rewrites only the os_prefix line.",
             "[all]", "arm_64bit=1", "upstream_kernel=1",
             "kernel=vmlinuz", "initramfs initrd.img followkernel"]
    for layer in image.layers:
        if layer.config_lines:
            lines.append(f"# layer {layer.name}")
            lines += layer.config_lines
    for gpio in image.gpio_safe:
        drive = "dl" if gpio.level == "low" else "dh"
        lines.append(f"# {image.kind}: {gpio.why}" if gpio.why else f"# {image.kind}")
        lines.append(f"gpio={gpio.pin}=op,{drive}")
    if image.extra_config:
        lines.append(f"# kind {image.kind}")
        lines += image.extra_config
    lines.append(f"os_prefix={prefix}")
    return "\n".join(lines) + "\n"


def render_cmdline(image: Image, slot: str) -> str:
    """The kernel command line of one slot (one line, as the Pi firmware wants it)."""
    part, _prefix = SLOTS[slot]
    args = [a for layer in image.layers for a in layer.cmdline] + image.extra_cmdline
    args += [f"root=PARTUUID={partuuid(part)}", "rootfstype=ext4", "rootwait", f"rauc.slot={slot}"]
    return " ".join(_unique(args)) + "\n"


def render_fstab(image: Image) -> str:
    """Mounts: boot (FAT, read-only until the updater remounts it), data, tmpfs for volatile paths.

    ``/`` is not listed: the kernel mounts it read-only (``ro`` on the command line) and
    ``systemd-remount-fs`` leaves it so.
    """
    # Both partitions wait 5 min for their device (bookworm's systemd 252 gives a device 90 s
    # whatever DefaultTimeoutStartSec says): a slow udev coldplug is not an emergency boot.
    wait = "x-systemd.device-timeout=5min"
    data_opts = f"defaults,noatime,commit=5,errors=remount-ro,{wait}"
    rows = [
        ("# <device>", "<mount>", "<type>", "<options>", "0", "<pass>"),
        (f"PARTUUID={partuuid(PART_BOOT)}", "/boot/firmware", "vfat",
         f"ro,noatime,fmask=0022,dmask=0022,errors=remount-ro,{wait}", "0", "2"),
        (f"PARTUUID={partuuid(PART_DATA)}", "/data", "ext4", data_opts, "0", "2"),
        ("tmpfs", "/tmp", "tmpfs", "mode=1777,nosuid,nodev,size=64M", "0", "0"),
        ("tmpfs", "/var/tmp", "tmpfs", "mode=1777,nosuid,nodev,size=16M", "0", "0"),
        ("tmpfs", "/var/log", "tmpfs", "mode=0755,nosuid,nodev,size=64M", "0", "0"),
        ("tmpfs", "/var/cache", "tmpfs", "mode=0755,nosuid,nodev,size=32M", "0", "0"),
        ("/data/system/var-lib-systemd", "/var/lib/systemd", "none",
         "bind,x-systemd.requires-mounts-for=/data", "0", "0"),
    ]
    if "broker" in image.layer_names():
        rows.append(("/data/mosquitto", "/var/lib/mosquitto", "none",
                     "bind,x-systemd.requires-mounts-for=/data", "0", "0"))
    return "".join("\t".join(row) + "\n" for row in rows)


def render_system_conf(image: Image) -> str:
    """RAUC's system.conf: the two root slots, our tryboot backend, the dev/production keyring."""
    lines = ["# RAUC system configuration for the storeedge " + image.kind + " image.",
             "[system]", f"compatible={image.compatible}", "bootloader=custom",
             "data-directory=/data/rauc", "bundle-formats=-plain",
             "max-bundle-download-size=1073741824", "",
             "[keyring]", "path=/etc/rauc/keyring.pem", "check-crl=false", "",
             "[handlers]",
             "bootloader-custom-backend=/usr/lib/storeedge/rauc-tryboot-backend", ""]
    for idx, (slot, (part, _prefix)) in enumerate(SLOTS.items()):
        lines += [f"[slot.rootfs.{idx}]", f"device=/dev/disk/by-partuuid/{partuuid(part)}",
                  "type=ext4", f"bootname={slot}", ""]
    return "\n".join(lines)


def render_manifest(image: Image, version: str, rootfs_name: str = "rootfs.ext4") -> str:
    """The RAUC bundle manifest (verity format; the hook copies the kernel to the boot slot)."""
    return "\n".join([
        "[update]", f"compatible={image.compatible}", f"version={version}",
        f"description=storeedge {image.kind} root filesystem", "",
        "[bundle]", "format=verity", "",
        "[hooks]", "filename=hook", "",
        "[image.rootfs]", f"filename={rootfs_name}", "hooks=post-install", "",
    ])


def render_genimage(image: Image, name: str) -> str:
    """genimage layout: MBR with boot (FAT32, bootable), root A, root B, data."""
    return f"""# storeedge {image.kind}: boot | root A | root B | data (generated by images/imagegen.py)
image boot.vfat {{
\tvfat {{
\t\tlabel = "SE-BOOT"
\t\textraargs = "-F 32"
\t}}
\tsize = {image.boot_mib}M
\tmountpoint = "/boot"
}}

image {name} {{
\thdimage {{
\t\tpartition-table-type = "mbr"
\t\tdisk-signature = 0x{DISK_SIGNATURE}
\t}}
\tpartition boot {{
\t\tpartition-type = 0xC
\t\tbootable = "true"
\t\timage = "boot.vfat"
\t\toffset = 4M
\t}}
\tpartition rootA {{
\t\tpartition-type = 0x83
\t\timage = "rootfs.ext4"
\t\tsize = {image.root_mib}M
\t}}
\tpartition rootB {{
\t\tpartition-type = 0x83
\t\tsize = {image.root_mib}M
\t}}
\tpartition data {{
\t\tpartition-type = 0x83
\t\timage = "data.ext4"
\t\tsize = {image.data_mib}M
\t}}
}}
"""


def render_app_config(image: Image) -> str:
    """Default app config (seeded to /data/storeedge/<app>.yaml on first boot)."""
    cfg = {
        "device": {"id": f"{image.kind.replace('-', '')}-unset"[:32], "kind": image.device_kind,
                   "store": "s0000"},
        "link": {"url": "mqtts://gateway.local:8883" if image.app != "gateway"
                 else "mqtts://127.0.0.1:8883", "tls_dir": IDENTITY_DIR},
        "outbox": {"path": "/data/storeedge/outbox.db"},
        "security": {"command_pub": f"{IDENTITY_DIR}/command.pub",
                     "e2e_key": f"{IDENTITY_DIR}/e2e.key"},
        "log": {"level": "info"},
    }
    for key, value in image.app_config.items():      # a kind may drop a section with null
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    head = (f"# storeedge {image.app} config ({image.kind} image default).\n"
            f"# Lives on the data partition; device.id and device.store are filled in from the\n"
            f"# device identity (/data/identity) by storeedge-provision on first boot.\n")
    return head + yaml.safe_dump(cfg, sort_keys=False)


def render_unit_dropin(image: Image) -> str:
    """Drop-in for ``storeedge@<app>.service``: environment and, for the door, the safe lock."""
    lines = []
    if "broker" in image.layer_names():
        lines += ["[Unit]", "Wants=mosquitto.service", "After=mosquitto.service", ""]
    lines += ["[Service]"]
    lines += [f"Environment={k}={v}" for k, v in sorted(image.unit_environment.items())]
    for gpio in image.gpio_safe:
        value = 0 if gpio.level == "low" else 1
        cmd = f"/usr/lib/storeedge/gpio-safe {gpio.pin} {value}"
        lines += [f"# {gpio.why}" if gpio.why else "#",
                  f"ExecStartPre=+{cmd}", f"ExecStopPost=+{cmd}"]
    return "\n".join(lines) + "\n"


def render_apt_preferences(image: Image) -> str:
    """apt_preferences(5) for a kind with backports: its packages from ``BACKPORTS_SUITE``
    (990: over the stable version), every other package never from there (-1).  A specific
    record wins over the general one, whatever their order."""
    return "\n".join([
        f"# storeedge {image.kind} image: generated by images/imagegen.py, do not edit here.",
        f"# Only these packages come from {BACKPORTS_SUITE}; nothing else does.",
        "Explanation: storeedge layers "
        + ", ".join(layer.name for layer in image.layers if layer.backports),
        f"Package: {' '.join(image.backports)}", f"Pin: release n={BACKPORTS_SUITE}",
        "Pin-Priority: 990", "",
        f"Explanation: storeedge: nothing else from {BACKPORTS_SUITE}", "Package: *",
        f"Pin: release n={BACKPORTS_SUITE}", "Pin-Priority: -1", ""])


def render_image_env(image: Image) -> str:
    return "".join(f"{k}={v}\n" for k, v in (
        ("STOREEDGE_KIND", image.kind), ("STOREEDGE_APP", image.app),
        ("STOREEDGE_UNIT", image.unit), ("STOREEDGE_COMPATIBLE", image.compatible),
        ("STOREEDGE_LAYERS", ",".join(image.layer_names()))))


def generated_files(image: Image, version: str = "0.0.0-dev") -> dict[str, str]:
    """Every generated file, keyed by its path below the render directory."""
    files = {
        "boot/config.txt": render_config_txt(image, "A"),
        "boot/slot-a/cmdline.txt": render_cmdline(image, "A"),
        "boot/slot-b/cmdline.txt": render_cmdline(image, "B"),
        "rootfs/usr/lib/storeedge/boot/config.txt": render_config_txt(image, "A"),
        "rootfs/usr/lib/storeedge/boot/cmdline-A.txt": render_cmdline(image, "A"),
        "rootfs/usr/lib/storeedge/boot/cmdline-B.txt": render_cmdline(image, "B"),
        "rootfs/etc/rauc/system.conf": render_system_conf(image),
        "rootfs/etc/fstab": render_fstab(image),
        "rootfs/etc/hostname": image.hostname + "\n",
        "rootfs/etc/storeedge/image.env": render_image_env(image),
        f"rootfs/usr/share/storeedge/defaults/{image.app}.yaml": render_app_config(image),
        f"rootfs/etc/systemd/system/{image.unit}.d/50-{image.kind}.conf":
            render_unit_dropin(image),
        "genimage.cfg": render_genimage(image, f"storeedge-{image.kind}.img"),
        "bundle/manifest.raucm": render_manifest(image, version),
        "packages.txt": "\n".join(image.packages) + "\n",
        "build-packages.txt": "\n".join(image.build_packages) + "\n",
        "python-packages.txt": "".join(p + "\n" for p in image.python_packages),
        "backports.txt": "".join(p + "\n" for p in image.backports),
        "units-enable.txt": "\n".join(image.enable) + "\n",
        "units-mask.txt": "\n".join(image.mask) + "\n",
        "layers.txt": "\n".join(image.layer_names()) + "\n",
        "scripts.txt": "".join(f"{layer.name}/{s}\n" for layer in image.layers
                               for s in layer.scripts),
        "image.json": json.dumps({"kind": image.kind, "app": image.app, "unit": image.unit,
                                  "compatible": image.compatible, "version": version,
                                  "disk_signature": DISK_SIGNATURE,
                                  "partitions_mib": [image.boot_mib, image.root_mib,
                                                     image.root_mib, image.data_mib]},
                                 indent=1) + "\n",
    }
    if image.backports:
        files["apt-preferences"] = render_apt_preferences(image)
    return files


def render(kind: str, outdir: Path, version: str = "0.0.0-dev",
           kinds_dir: Path | None = None) -> Image:
    """Write every generated file of ``kind`` below ``outdir``."""
    image = load_kind(kind, kinds_dir)
    for rel, text in generated_files(image, version).items():
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return image


def check_all() -> list[str]:
    """Load every layer and every kind; returns one line per kind (raises on the first error)."""
    for name in list_layers():
        load_layer(name)
    report = []
    for kind in list_kinds():
        image = load_kind(kind)
        report.append(f"{kind}: app={image.app} unit={image.unit} "
                      f"layers={','.join(image.layer_names())}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagegen", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the kinds and layers")
    sub.add_parser("check", help="parse every layer and kind definition")
    rend = sub.add_parser("render", help="write the generated files of one kind")
    rend.add_argument("kind")
    rend.add_argument("outdir", type=Path)
    rend.add_argument("--version", default="0.0.0-dev")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "list":
            print("kinds: " + " ".join(list_kinds()))
            print("layers: " + " ".join(list_layers()))
        elif args.cmd == "check":
            print("\n".join(check_all()))
        else:
            image = render(args.kind, args.outdir, args.version)
            print(f"rendered {image.kind} ({len(image.layers)} layers) into {args.outdir}")
    except DefinitionError as exc:
        print(f"imagegen: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
