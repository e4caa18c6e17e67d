"""A simulated 1-Wire bus: real-format w1_therm files in a temp folder, driven by physics.

Extends :class:`~storeedge.drivers.onewire.sysfs.SysfsBus`: reads go through the very same
file parsing as on a Pi.  Each read re-renders the probe's files from a thermal model of the
cabinet at the clock's current time, as the kernel runs a conversion on each read.

Physics (:class:`ThermalModel`), per second, for the cabinet air ``A`` and the stored product
``P`` (degC)::

    dA/dt = (ambient - A) * leak_per_s                   heat leaking through the walls
          + (ambient - A) * door_per_s * door_open        warm store air rushing in
          + (P - A) * air_product_per_s                   the cold product pulls the air back
          - (A - evaporator) / evap_tau_s * compressor_on thermostat with hysteresis
          + heat_c_per_s * defrost_on                     defrost heater (compressor off)
    dP/dt = (A - P) * product_air_per_s                   the product's large thermal mass

and the probe (in the air) follows ``A`` with a first-order lag (``probe_lag_s``), quantised to
the DS18B20's 1/16 degC with +-1 LSB of noise.  With the defaults a 4-minute restock lifts the
air ~5 degC and recovers in ~10 minutes; a failed compressor crosses -15 degC after ~1 h and
-10 degC after ~8 h; a door left open holds the air near -9 degC.

Faults on demand: every :class:`~storeedge.drivers.onewire.parser.Fault`
(:meth:`SimulatedBus.inject`), a vanished probe (:meth:`SimulatedBus.vanish`), a failed
compressor (``model.compressor_failed = True``) and an open door (``model.door_open``).

Example::

    clock = SimulatedClock()
    bus = SimulatedBus(clock=clock)
    cab = ThermalModel(FreezerPhysics(setpoint_c=-20), clock.time())
    bus.add_probe("28-0000a1b2c3d4", cab)
    clock.advance(600); bus.read("28-0000a1b2c3d4").temp_c     # about -20
"""
from __future__ import annotations

import datetime as _dt
import os
import random
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from storeedge.drivers.clock import SystemClock
from storeedge.drivers.onewire.exc import OneWireError
from storeedge.drivers.onewire.parser import (RAW_NO_POWER, RAW_POWER_ON, Fault, check_rom,
                                              crc8, kernel_millidegrees)
from storeedge.drivers.onewire.sysfs import SysfsBus

MAX_STEP_S = 2.0
KERNELS = ("new", "old")   # new: >= 5.10 (empty read after 5 CRC retries); old: "crc=.. NO"


@dataclass
class FreezerPhysics:
    """Parameters of a cabinet (defaults: a -20 degC reach-in freezer in a 20 degC store).

    Rates are per second; temperatures degC; times seconds; defrost starts are UTC ``HH:MM``.
    """

    setpoint_c: float = -20.0
    hysteresis_c: float = 2.0
    ambient_c: float = 20.0
    leak_per_s: float = 1 / 7200          # walls: 2 h time constant
    door_per_s: float = 1 / 900           # open door: 15 min time constant
    air_product_per_s: float = 1 / 900    # air <-> product exchange, seen from the air
    product_air_per_s: float = 1 / 8000   # ... seen from the (much heavier) product
    evap_delta_c: float = 12.0            # evaporator this far below the setpoint
    evap_tau_s: float = 900.0             # compressor pull-down time constant
    heat_c_per_s: float = 0.01            # defrost heater, 36 degC/h
    defrost_starts_utc: tuple[str, ...] = ()
    defrost_len_s: float = 1200.0
    probe_lag_s: float = 60.0


@dataclass
class ThermalModel:
    """The state of one cabinet, integrated lazily up to the time asked for.

    Args:
        physics: the cabinet's parameters.
        start_time: wall time (epoch seconds) of the initial state.
        start_c: initial air and probe temperature (default: the setpoint).
    """

    physics: FreezerPhysics
    start_time: float
    start_c: float | None = None
    door_open: bool = False
    compressor_failed: bool = False
    air_c: float = field(init=False)
    product_c: float = field(init=False)
    probe_c: float = field(init=False)
    compressor_on: bool = field(init=False, default=False)
    t: float = field(init=False)

    def __post_init__(self):
        start = self.physics.setpoint_c if self.start_c is None else self.start_c
        self.air_c = self.product_c = self.probe_c = float(start)
        self.t = float(self.start_time)
        self._lock = threading.Lock()

    def defrosting(self, t: float) -> bool:
        """True while a scheduled defrost heats the cabinet at wall time ``t``."""
        ph = self.physics
        if not ph.defrost_starts_utc:
            return False
        day = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
        secs = day.hour * 3600 + day.minute * 60 + day.second
        for hhmm in ph.defrost_starts_utc:
            h, m = (int(x) for x in hhmm.split(":"))
            if 0 <= (secs - (h * 3600 + m * 60)) % 86400 < ph.defrost_len_s:
                return True
        return False

    def advance_to(self, t: float) -> float:
        """Integrate up to wall time ``t`` (seconds); returns the probe temperature, degC."""
        with self._lock:
            while self.t < t:
                dt = min(MAX_STEP_S, t - self.t)
                self._step(dt)
                self.t += dt
            return self.probe_c

    def _step(self, dt: float) -> None:
        ph = self.physics
        defrost = self.defrosting(self.t)
        if defrost or self.compressor_failed:
            self.compressor_on = False
        elif self.air_c > ph.setpoint_c + ph.hysteresis_c / 2:
            self.compressor_on = True
        elif self.air_c < ph.setpoint_c - ph.hysteresis_c / 2:
            self.compressor_on = False
        gap = ph.ambient_c - self.air_c
        rate = gap * ph.leak_per_s + (gap * ph.door_per_s if self.door_open else 0.0)
        rate += (self.product_c - self.air_c) * ph.air_product_per_s
        if self.compressor_on:
            rate -= (self.air_c - (ph.setpoint_c - ph.evap_delta_c)) / ph.evap_tau_s
        rate += ph.heat_c_per_s if defrost else 0.0
        self.air_c += rate * dt
        self.product_c += (self.air_c - self.product_c) * ph.product_air_per_s * dt
        self.probe_c += (self.air_c - self.probe_c) * min(1.0, dt / ph.probe_lag_s)


@dataclass
class SimProbe:
    """One simulated DS18B20 on the bus.

    ``conversion_ms`` is the 12-bit conversion time the probe takes (genuine parts ~600 ms;
    several clone families are far faster, or fixed at another value).
    """

    rom: str
    model: ThermalModel
    offset_c: float = 0.0
    conversion_ms: float = 600.0
    fault: Fault | None = None
    fault_reads: int | None = None     # None: until cleared
    present: bool = True
    last_good: bytes = bytes.fromhex("5005" "4b467fff0c10") + bytes([0x1C])
    last_text: str = ""


def scratchpad(raw_register: int, byte6: int | None = None) -> bytes:
    """The 9 scratchpad bytes a genuine DS18B20 returns for a temperature register value.

    TH=4b TL=46 config=7f (12 bit), byte 5 ff, byte 6 as a genuine part sets it
    (``0x10 - (LSB & 0x0f)``), byte 7 10, then the CRC-8.
    """
    lo, hi = (raw_register & 0xFFFF).to_bytes(2, "little")
    b6 = (0x10 - (lo & 0x0F)) if byte6 is None else byte6
    body = bytes([lo, hi, 0x4B, 0x46, 0x7F, 0xFF, b6, 0x10])
    return body + bytes([crc8(body)])


def w1_slave_text(read: bytes, retained: bytes, crc_ok: bool, family: str = "28") -> str:
    """Render a ``w1_slave`` file exactly as w1_therm's ``w1_slave_show`` prints it."""
    reg = int.from_bytes(read[0:2], "little", signed=True)
    line1 = "".join(f"{b:02x} " for b in read) + f": crc={crc8(read[:8]):02x} " \
        + ("YES" if crc_ok else "NO") + "\n"
    return line1 + "".join(f"{b:02x} " for b in retained) + f"t={kernel_millidegrees(reg)}\n"


class SimulatedBus(SysfsBus):
    """A 1-Wire bus simulated in a folder (a fresh temp folder when ``root`` is None).

    Args:
        root: folder to write the sysfs tree into; created if missing.
        clock: the clock whose ``time()`` drives the physics (tests: a SimulatedClock).
        kernel: ``"new"`` (Linux >= 5.10: a failed CRC gives an empty read) or ``"old"``
            (``crc=xx NO`` is shown).
        seed: seed of the sensor noise.
    """

    backend = "sim"

    def __init__(self, root=None, *, source: str = "w1_slave", clock=None,
                 kernel: str = "new", seed: int = 0):
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, not {kernel!r}")
        self._owned = root is None
        root = Path(tempfile.mkdtemp(prefix="w1sim-")) if root is None else Path(root)
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root, source=source)
        self.clock = clock or SystemClock()
        self.kernel = kernel
        self._rng = random.Random(seed)
        self._probes: dict[str, SimProbe] = {}
        self._fds: dict[Path, int] = {}
        self._lock = threading.RLock()
        (root / "w1_bus_master1").mkdir(exist_ok=True)
        self._write_master()

    # -- set-up and faults ----------------------------------------------------------------
    def add_probe(self, rom: str, model: ThermalModel, *, offset_c: float = 0.0,
                  conversion_ms: float = 600.0) -> SimProbe:
        """Put a probe on the bus measuring ``model``'s cabinet; returns its handle."""
        with self._lock:
            probe = SimProbe(check_rom(rom), model, offset_c, conversion_ms)
            self._probes[rom] = probe
            self._show(probe)
            return probe

    def probe(self, rom: str) -> SimProbe:
        """The simulated probe ``rom`` (KeyError-like OneWireError if not added)."""
        try:
            return self._probes[rom]
        except KeyError:
            raise OneWireError(f"no simulated probe {rom!r}") from None

    def inject(self, rom: str, fault: Fault, reads: int | None = None) -> None:
        """Make the next ``reads`` reads of ``rom`` (None: all, until :meth:`clear`) fail."""
        if fault is Fault.MISSING:
            self.vanish(rom)
            return
        with self._lock:
            probe = self.probe(rom)
            probe.fault, probe.fault_reads = Fault(fault), reads

    def clear(self, rom: str) -> None:
        """End an injected fault and bring a vanished probe back."""
        with self._lock:
            probe = self.probe(rom)
            probe.fault, probe.fault_reads = None, None
            if not probe.present:
                probe.present = True
                self._show(probe)

    def vanish(self, rom: str) -> None:
        """The probe drops off the bus: its folder and its line in the master list go."""
        with self._lock:
            probe = self.probe(rom)
            probe.present = False
            self._close_fds(self.root / rom)
            shutil.rmtree(self.root / rom, ignore_errors=True)
            self._write_master()

    def close(self) -> None:
        """Close the files; remove the temp folder (only when this bus created it)."""
        with self._lock:
            self._close_fds(self.root)
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- the "kernel" -----------------------------------------------------------------------
    def _read_attr(self, path: Path) -> str:
        rom = path.parent.name
        if path.name in ("w1_slave", "temperature") and rom in self._probes:
            with self._lock:
                probe = self._probes[rom]
                if probe.present:
                    self._convert(probe, only=path.name)
        return super()._read_attr(path)

    def _write_attr(self, path: Path, text: str) -> None:
        super()._write_attr(path, text)
        probe = self._probes.get(path.parent.name)
        if path.name == "conv_time" and probe is not None and text.strip() == "1":
            measured = probe.conversion_ms * (1 + self._rng.uniform(-0.01, 0.01))
            _atomic_write(path, f"{int(measured * 1.2)}\n")

    def _show(self, probe: SimProbe) -> None:
        folder = self.root / probe.rom
        folder.mkdir(exist_ok=True)
        for name, text in (("resolution", "12\n"), ("conv_time", "750\n"), ("ext_power", "1\n")):
            _atomic_write(folder / name, text)
        self._write_master()
        self._convert(probe)

    def _write_master(self) -> None:
        ids = [r for r, p in sorted(self._probes.items()) if p.present]
        master = self.root / "w1_bus_master1"
        _atomic_write(master / "w1_master_slaves", "".join(f"{r}\n" for r in ids)
                      or "not found.\n")
        _atomic_write(master / "w1_master_slave_count", f"{len(ids)}\n")

    def _convert(self, probe: SimProbe, only: str | None = None) -> None:
        """One conversion at the clock's time: write ``w1_slave`` and ``temperature`` (or
        ``only`` the one being read: each file write costs ~0.2 ms)."""
        temp = probe.model.advance_to(self.clock.time()) + probe.offset_c
        reg = round(temp * 16) + self._rng.choice((-1, 0, 0, 1))
        fault = probe.fault
        if fault is Fault.STALE and probe.last_text:
            return                      # the kernel hands back the previous sample
        text = self._render(probe, fault, scratchpad(reg))
        if probe.fault_reads is not None:
            probe.fault_reads -= 1
            if probe.fault_reads <= 0:
                probe.fault, probe.fault_reads = None, None
        probe.last_text = text
        folder = self.root / probe.rom
        if only in (None, "w1_slave"):
            self._put(folder / "w1_slave", text)
        if only in (None, "temperature"):
            self._put(folder / "temperature", _temperature_text(text))

    def _put(self, path: Path, text: str) -> None:
        """Rewrite ``path`` in place through a kept-open descriptor (a rename per read costs
        ~1 ms on a busy machine; this costs microseconds).  Reads through this bus are
        serialised with the writes; an outside reader racing a conversion may see a mix."""
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        data = text.encode("ascii")
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))

    def _close_fds(self, under: Path) -> None:
        for path in [p for p in self._fds if under in p.parents]:
            os.close(self._fds.pop(path))

    def _render(self, probe: SimProbe, fault: Fault | None, good: bytes) -> str:
        bad_crc = fault in (Fault.CRC, Fault.ALL_FF)
        if fault is Fault.EMPTY or (bad_crc and self.kernel == "new"):
            return ""
        if fault is Fault.MALFORMED:
            return "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n"   # truncated: 2nd line lost
        if fault is Fault.CRC:
            corrupt = bytearray(good)
            corrupt[self._rng.randrange(8)] ^= 1 << self._rng.randrange(8)
            return w1_slave_text(bytes(corrupt), probe.last_good, False)
        read = {Fault.ALL_FF: b"\xff" * 9, Fault.ALL_ZERO: bytes(9),
                Fault.POWER_ON: scratchpad(RAW_POWER_ON, 0x0C),
                Fault.NO_POWER: scratchpad(RAW_NO_POWER),
                Fault.OUT_OF_RANGE: scratchpad(-1000)}.get(fault, good)
        crc_ok = crc8(read[:8]) == read[8]
        if crc_ok:
            probe.last_good = read
        return w1_slave_text(read, probe.last_good, crc_ok)


def _temperature_text(w1_slave: str) -> str:
    """The ``temperature`` file matching a ``w1_slave`` text (empty when the read failed)."""
    if "YES" not in w1_slave or "t=" not in w1_slave:
        return ""
    return w1_slave.rsplit("t=", 1)[1]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)
