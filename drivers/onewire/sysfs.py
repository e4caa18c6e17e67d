"""Read DS18B20 probes through the Linux ``w1_therm`` sysfs files under a root folder.

Wiring (Raspberry Pi): ``dtoverlay=w1-gpio,gpiopin=4`` in ``config.txt``, 4.7 kOhm pull-up from
DATA to 3V3, probes powered from 3V3 (not parasite).  The kernel then shows::

    /sys/bus/w1/devices/w1_bus_master1/w1_master_slaves   one ROM id a line, or "not found."
    /sys/bus/w1/devices/28-0316a2797aff/w1_slave           two lines, see parser.py
    /sys/bus/w1/devices/28-0316a2797aff/temperature        millidegrees (Linux 5.10+)
    /sys/bus/w1/devices/28-0316a2797aff/conv_time          ms; write "1" to measure (5.10+)

Example::

    bus = open_bus("sysfs")                 # or STOREEDGE_ONEWIRE=sim for a simulated bus
    for rom in bus.list_probes():
        sample = bus.read(rom)               # Sample(temp_c=-19.875, fault=None, ...)

Reading is blocking (each read of ``w1_slave`` starts a conversion: ~750 ms at 12 bits), so
call it from the sampling thread, never from an event loop.
"""
from __future__ import annotations

import os
from pathlib import Path

from storeedge.drivers.exc import UnknownBackend
from storeedge.drivers.onewire.exc import (BusNotFound, ConversionTimeUnsupported,
                                           ProbeIOError)
from storeedge.drivers.onewire.parser import (Fault, Sample, check_rom, parse_master_slaves,
                                              parse_temperature, parse_w1_slave)

DEFAULT_ROOT = "/sys/bus/w1/devices"
ONEWIRE_ENV = "STOREEDGE_ONEWIRE"
BACKENDS = ("sysfs", "sim")
SOURCES = ("w1_slave", "temperature")
#: Family codes handled by w1_therm (DS18S20, DS1822, DS18B20, DS1825, DS28EA00).
THERM_FAMILIES = ("10", "22", "28", "3b", "42")
#: The kernel stores a *measured* conversion time increased by 20 % (sysfs-driver-w1_therm).
CONV_TIME_MARGIN = 1.2


class SysfsBus:
    """The w1_therm probes under ``root``.

    Args:
        root: folder holding ``w1_bus_master*`` and the ``xx-xxxxxxxxxxxx`` probe folders.
        source: ``"w1_slave"`` (default: shows the scratchpad, so every bad read is caught) or
            ``"temperature"`` (newer kernels; cannot show an all-zero scratchpad).
    """

    backend = "sysfs"

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT, *, source: str = "w1_slave"):
        if source not in SOURCES:
            raise ValueError(f"unknown 1-Wire source {source!r}; choose one of {SOURCES}")
        self.root = Path(root)
        self.source = source

    # -- file access (the simulated bus hooks these, like the kernel would) --------------
    def _read_attr(self, path: Path) -> str:
        with open(path, "r", encoding="ascii", errors="replace") as f:
            return f.read()

    def _write_attr(self, path: Path, text: str) -> None:
        with open(path, "w", encoding="ascii") as f:
            f.write(text)

    # -- bus -----------------------------------------------------------------------------
    def masters(self) -> list[str]:
        """Names of the bus masters (``w1_bus_master1`` ...); raises BusNotFound if none."""
        if not self.root.is_dir():
            raise BusNotFound(f"no 1-Wire sysfs folder at {self.root} (is the w1-gpio overlay "
                              f"enabled and w1_therm loaded?)")
        return sorted(p.name for p in self.root.glob("w1_bus_master*"))

    def list_probes(self) -> list[str]:
        """ROM ids of the temperature probes the bus masters list now, sorted."""
        found: set[str] = set()
        masters = self.masters()
        for master in masters:
            try:
                text = self._read_attr(self.root / master / "w1_master_slaves")
            except FileNotFoundError:
                continue
            found.update(parse_master_slaves(text))
        if not masters:  # no master folder (some containers): fall back to the links
            found.update(p.name for p in self.root.iterdir() if p.is_dir())
        return sorted(r for r in found if r[:2] in THERM_FAMILIES and r[2:3] == "-")

    def present(self, rom: str) -> bool:
        """True when the probe's folder exists (the kernel removes it after failed searches)."""
        return (self.root / check_rom(rom)).is_dir()

    # -- reading -------------------------------------------------------------------------
    def read(self, rom: str) -> Sample:
        """Read one probe now (blocks for a conversion).  Never raises for bad data."""
        check_rom(rom)
        path = self.root / rom / self.source
        try:
            text = self._read_attr(path)
        except FileNotFoundError:
            return Sample(rom, None, Fault.MISSING, f"probe {rom} is not on the bus "
                          f"({path} missing): unplugged, cut cable or dead probe",
                          None, self.source)
        except OSError as exc:
            return Sample(rom, None, Fault.EMPTY, f"read error on {path}: {exc}", None,
                          self.source)
        if self.source == "temperature":
            return parse_temperature(text, rom)
        return parse_w1_slave(text, rom)

    def measure_conversion_ms(self, rom: str) -> float:
        """Measure the probe's conversion time in milliseconds at its current resolution.

        Writes ``1`` to ``conv_time`` (the kernel converts once, times it and stores it +20 %)
        and reads it back.  Needs root (sysfs attributes are root-writable) and Linux 5.10+.
        """
        path = self.root / check_rom(rom) / "conv_time"
        if not path.exists():
            raise ConversionTimeUnsupported(
                f"{path} does not exist: measuring conversion time needs w1_therm from "
                f"Linux 5.10 or later")
        try:
            self._write_attr(path, "1\n")
            text = self._read_attr(path).strip()
        except OSError as exc:
            raise ProbeIOError(f"cannot measure conversion time through {path}: {exc} "
                               f"(writing conv_time needs root)") from exc
        if not text.isdigit() or int(text) <= 1:
            raise ProbeIOError(f"{path} returned {text!r} after a measurement request")
        return int(text) / CONV_TIME_MARGIN


def backend_name(backend: str | None = None) -> str:
    """The backend to use: the argument, else ``$STOREEDGE_ONEWIRE``, else ``sysfs``."""
    name = (backend or os.environ.get(ONEWIRE_ENV) or "sysfs").strip().lower()
    if name not in BACKENDS:
        raise UnknownBackend(f"unknown 1-Wire backend {name!r}; choose one of "
                             f"{', '.join(BACKENDS)}")
    return name


def open_bus(backend: str | None = None, *, root: str | os.PathLike | None = None,
             source: str = "w1_slave", clock=None):
    """A bus for ``backend``: ``sysfs`` (real kernel files) or ``sim`` (a simulated bus in a
    temp folder, with no probes yet: add them with ``SimulatedBus.add_probe``)."""
    name = backend_name(backend)
    if name == "sim":
        from storeedge.drivers.onewire.sim import SimulatedBus
        return SimulatedBus(root, source=source, clock=clock)
    return SysfsBus(root or DEFAULT_ROOT, source=source)
