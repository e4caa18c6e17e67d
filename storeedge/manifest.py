"""The store manifest (``store.yaml``): one file describing a whole store.

It is read with the project's strict config machinery (``storeedge/config.py``): an
unknown key, a wrong type, an out-of-range pin or port, a duplicate id, or a section that does
not fit the device's kind is refused with the dotted key and the line::

    store.yaml: devices[4].freezer (line 31): given for a checkout device (kind checkout
    takes only the section checkout)

Example (``docs/examples/store-12-lanes.yaml`` is a whole store)::

    store: {id: s0042, timezone: Europe/Paris}
    gateway: {id: gw-1, host: 10.42.0.2, broker_port: 8883}
    store_server: {id: store-1, host: 10.42.0.3, broker_port: 8884,
                   db: "sqlite:////var/lib/storeedge/store.db", web_port: 8080}
    consoles: true
    devices:
      - {id: lane-01, kind: checkout, location: "lane 1",
         checkout: {camera: picamera2, pos: serial, pos_port: /dev/ttyUSB0}}
      - id: fz-01
        kind: freezer
        location: "aisle 7, ice cream"
        freezer:
          units: {ice1: {kind: frozen, door_pin: 17,
                         probes: {top: 28-00000a1b2c01, bottom: 28-00000a1b2c02}}}
      - {id: door-1, kind: dock_door, location: "dock 1",
         door: {relay_pin: 17, contact_pin: 27, scanner_port: /dev/ttyACM0}}

Every key, with its unit and default, is listed in docs/config-reference.md.
"""
from __future__ import annotations

import os
from typing import Any

from storeedge.config import (ConfigError, config_from_yaml, section,
                                              setting)
from storeedge.settings import ID_PATTERN

DEVICE_KINDS = ("checkout", "dock_door", "freezer")
HW_SECTION = {"checkout": "checkout", "dock_door": "door", "freezer": "freezer"}
ROM_PATTERN = r"[0-9a-f]{2}-[0-9a-f]{12}"
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"
CONSOLE_SUFFIX = "-con"


def port_setting(default: int, doc: str):
    """A TCP port, 1..65535."""
    return setting(default, min=1, max=65535, doc=doc)


@section
class StoreInfo:
    """The store itself."""

    id: str = setting("s0001", pattern=ID_PATTERN, doc="store id (in every topic and event)")
    timezone: str = setting("UTC", doc="IANA time zone (freezer check and defrost times)")


@section
class GatewayEntry:
    """The gateway machine; the in-store broker (devices + gateway) runs on it."""

    id: str = setting("gw-1", pattern=ID_PATTERN, doc="gateway identity (certificate CN)")
    host: str = setting("127.0.0.1", doc="address the devices use to reach the in-store broker")
    broker_port: int = port_setting(8883, "in-store broker TLS port")
    bind: str = setting("0.0.0.0", doc="address the in-store broker listens on")
    data_dir: str = setting("/var/lib/storeedge", doc="gateway data folder (relay SQLite)")


@section
class StoreServerEntry:
    """The store server machine; the store broker (gateway + store servers) runs on it."""

    id: str = setting("store-1", pattern=ID_PATTERN, doc="store-server identity")
    host: str = setting("127.0.0.1", doc="address the gateway uses to reach the store broker")
    broker_port: int = port_setting(8884, "store broker TLS port")
    bind: str = setting("0.0.0.0", doc="address the store broker listens on")
    db: str = setting("sqlite:////var/lib/storeedge/store.db",
                      doc="sqlite:////ABS/FILE or postgresql://...")
    web_host: str = setting("0.0.0.0", doc="store page listen address")
    web_port: int = port_setting(8080, "store page port")


@section
class CheckoutHW:
    """A checkout lane's parts."""

    camera: str = setting("picamera2", choices=("picamera2", "libcamera", "v4l2", "synthetic"),
                          doc="camera backend (libcamera: the checkout image's CSI path)")
    camera_device: str = setting("/dev/video0", doc="v4l2: the video node")
    pos: str = setting("serial", choices=("serial", "mqtt", "synthetic", "none"),
                       doc="POS scan feed")
    pos_port: str = setting("/dev/ttyUSB0", doc="serial: POS port; mqtt: POS broker URL")
    pos_baudrate: int = setting(9600, unit="bit/s", min=1200, max=921600, doc="serial speed")
    detector: str = setting("litert", choices=("litert", "none"), doc="hand detector")


@section
class FreezerUnitHW:
    """One cabinet and its probes."""

    kind: str = setting("frozen", choices=("frozen", "chilled"), doc="what it stores")
    probes: dict[str, str] = setting({}, doc="probe name -> DS18B20 ROM id (28-...)")
    door_pin: int | None = setting(None, min=0, max=27, doc="BCM pin of the door contact")

    def check(self) -> None:
        if not self.probes:
            raise ConfigError("probes", "a unit needs at least one probe (name: ROM id)")
        for name, rom in self.probes.items():
            _match(f"probes.{name}", name, NAME_PATTERN, "a probe name (a-z, 0-9, _ -)")
            _match(f"probes.{name}", rom, ROM_PATTERN, "a DS18B20 ROM id like 28-00000a1b2c3d")


@section
class FreezerHW:
    """A freezer monitor's parts."""

    onewire: str = setting("sysfs", choices=("sysfs", "sim"), doc="1-Wire backend")
    units: dict[str, FreezerUnitHW] = setting({}, doc="cabinets by name")

    def check(self) -> None:
        if not self.units:
            raise ConfigError("units", "a freezer monitor needs at least one unit")
        seen: dict[str, str] = {}
        for uname, unit in self.units.items():
            _match(f"units.{uname}", uname, NAME_PATTERN, "a unit name (a-z, 0-9, _ -)")
            for pname, rom in unit.probes.items():
                if pname in seen or rom in seen.values():
                    raise ConfigError(f"units.{uname}.probes.{pname}",
                                      "probe name or ROM id used twice on this device")
                seen[pname] = rom


@section
class DoorHW:
    """A dock door's parts."""

    gpio_backend: str = setting("lgpio", choices=("lgpio", "mock"),
                                doc="gpio pin factory (mock: simulated pins)")
    relay_pin: int = setting(17, min=0, max=27, doc="BCM pin of the lock relay")
    contact_pin: int = setting(27, min=0, max=27, doc="BCM pin of the door contact")
    rex_pin: int | None = setting(None, min=0, max=27, doc="request-to-exit button")
    tamper_pin: int | None = setting(None, min=0, max=27, doc="tamper switch")
    scanner_port: str | None = setting(None, doc="serial QR scanner (null: none)")
    scanner_baudrate: int = setting(9600, unit="bit/s", min=1200, max=4_000_000,
                                    doc="scanner line speed")
    trusted_keys: list[str] = setting([], doc="'sedpub1:<kid>:<key>' lines (storeedge dock_door "
                                              "keygen) of the keys that sign delivery codes")

    def check(self) -> None:
        pins = [p for p in (self.relay_pin, self.contact_pin, self.rex_pin, self.tamper_pin)
                if p is not None]
        if len(set(pins)) != len(pins):
            raise ConfigError("relay_pin", f"two door signals share a pin: {pins}")


@section
class DeviceEntry:
    """One device: its kind, id, where it is and the parts its kind needs."""

    id: str = setting("", pattern=ID_PATTERN + "|", doc="device id (certificate CN)")
    kind: str = setting("", choices=DEVICE_KINDS + ("",), doc="device kind")
    location: str = setting("", doc="where it is (free text, in SUMMARY.md)")
    console: bool | None = setting(None, doc="enrol a standalone console <id>-con; null: "
                                             "the manifest's consoles")
    checkout: CheckoutHW | None = setting(None, doc="kind checkout: its parts")
    freezer: FreezerHW | None = setting(None, doc="kind freezer: its parts (required)")
    door: DoorHW | None = setting(None, doc="kind dock_door: its parts")

    def check(self) -> None:
        if not self.id:
            raise ConfigError("id", "missing: every device needs an id")
        if not self.kind:
            raise ConfigError("kind", f"missing: one of {', '.join(DEVICE_KINDS)}")
        own = HW_SECTION[self.kind]
        for name in HW_SECTION.values():
            if name != own and getattr(self, name) is not None:
                raise ConfigError(name, f"given for a {self.kind} device (kind {self.kind} "
                                        f"takes only the section {own})")
        if self.kind == "freezer" and self.freezer is None:
            raise ConfigError("freezer", "missing: a freezer needs its units and probes")

    def hardware(self) -> Any:
        """The kind's parts section (defaults when the manifest gives none)."""
        given = getattr(self, HW_SECTION[self.kind])
        return given if given is not None else {"checkout": CheckoutHW,
                                                "dock_door": DoorHW}[self.kind]()


@section
class Manifest:
    """A store: its gateway, its store server and every device."""

    store: StoreInfo = setting(StoreInfo)
    gateway: GatewayEntry = setting(GatewayEntry)
    store_server: StoreServerEntry = setting(StoreServerEntry)
    consoles: bool = setting(False, doc="enrol a standalone console <id>-con for every device")
    devices: list[DeviceEntry] = setting([], doc="the devices")

    def check(self) -> None:
        owner = {self.gateway.id: "gateway", self.store_server.id: "store_server"}
        if len(owner) < 2:
            raise ConfigError("store_server.id", f"{self.store_server.id!r} is also the "
                                                 "gateway's id")
        for i, dev in enumerate(self.devices):
            for ident in (dev.id, console_id(dev.id) if self.wants_console(dev) else None):
                if ident is None:
                    continue
                if len(ident) > 32:
                    raise ConfigError(f"devices[{i}].id", f"{dev.id!r} is too long for a "
                                      f"console identity {ident!r} (ids are at most 32 "
                                      "characters): shorten it or set console: false")
                if ident in owner:
                    raise ConfigError(f"devices[{i}].id", f"duplicate id {ident!r} (already "
                                      f"used by {owner[ident]})")
                owner[ident] = f"devices[{i}]"

    def relayed(self) -> list[str]:
        """The ids the gateway accepts events from: every device and its console."""
        return [ident for ident, kind in self.identities().items()
                if kind not in ("gateway", "store_server")]

    def wants_console(self, dev: DeviceEntry) -> bool:
        """Whether ``dev`` gets a standalone console identity ``<id>-con``."""
        return self.consoles if dev.console is None else dev.console

    def identities(self) -> dict[str, str]:
        """Every identity the store needs: id -> PKI kind (gateway, store server, devices,
        consoles). A standalone console ``<id>-con`` is enrolled with its device's kind: it
        publishes as a device of that kind (``se/v1/{store}/{kind}/{id}-con/...``, see
        firmware/console/main.py), which is what the broker ACL then grants it."""
        out = {self.gateway.id: "gateway", self.store_server.id: "store_server"}
        for dev in self.devices:
            out[dev.id] = dev.kind
            if self.wants_console(dev):
                out[console_id(dev.id)] = dev.kind
        return out


def console_id(dev: str) -> str:
    """The standalone console identity of device ``dev``."""
    return f"{dev}{CONSOLE_SUFFIX}"


def _match(key: str, value: str, pattern: str, what: str) -> None:
    import re
    if not re.fullmatch(pattern, value):
        raise ConfigError(key, f"{value!r} is not {what}")


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a store manifest.

    Raises:
        ConfigError: one line naming the file, the dotted key and the line.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read the manifest: {exc.strerror}", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError("", "not UTF-8 text", path=path) from None
    try:
        return config_from_yaml(text, Manifest)
    except ConfigError as exc:
        raise exc.located(exc.key, exc.line, path) from None
