"""Parsers for the Linux ``w1_therm`` sysfs files: pure functions and objects fed text.

Nothing here touches the file system, so every case is tested with real-format texts.

``w1_slave`` (every kernel; Documentation/w1/slaves/w1_therm.rst)::

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

Line 1 is the 9 scratchpad bytes just read, the CRC the kernel computed and whether it matched.
Line 2 is the bytes the kernel *retained* (the last read whose CRC matched: after a failed read
they differ from line 1) and ``t=`` in millidegrees Celsius computed from line 1, so ``t=`` is
only meaningful after ``YES``.  Kernels since 5.10 retry 5 times and then return an *empty*
read instead of a ``NO``; ``temperature`` (same kernels) holds just ``t`` (``"23125\\n"``), and
is empty on failure.

Known bad reads that pass as numbers (DS18B20 datasheet and public bug reports):

* ``50 05 .. 0c 10``: 85.000 degC, the power-on value of the temperature register (no
  conversion happened: brown-out, parasite power sag).
* ``ff 07``: 127.94 degC (0x07FF), reported when the probe lacks power for a conversion.
* all ``00``: passes the CRC (CRC-8 of zeros is 0) but is an empty bus read.
* all ``ff``: nothing drove the bus low: lost ground or broken data wire.
* the same raw bytes for far longer than physics allows: a stale, repeated sample.
"""
from __future__ import annotations

import enum
import re
from typing import NamedTuple

from storeedge.drivers.onewire.exc import BadRomId

ROM_RE = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{12}$")
_LINE1 = re.compile(r"^((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (YES|NO)$")
_LINE2 = re.compile(r"^((?:[0-9a-f]{2} ){9})t=(-?\d+)$")
#: Families whose temperature is the signed 16-bit register / 16 (DS18B20, DS1822, DS1825,
#: DS28EA00).  DS18S20 (``10``) uses a different formula; for it ``t=`` is trusted.
SIXTEENTH_FAMILIES = frozenset({"28", "22", "3b", "42"})
RAW_POWER_ON = 0x0550       # 85.000 degC
RAW_NO_POWER = 0x07FF       # 127.9375 degC
MIN_C, MAX_C = -55.0, 125.0  # DS18B20 measuring range, degC


class Fault(str, enum.Enum):
    """Why a read was rejected.  Values are stable strings (they appear in events and logs)."""

    CRC = "crc_mismatch"
    EMPTY = "empty_read"
    POWER_ON = "power_on_85c"
    NO_POWER = "insufficient_power_127c"
    ALL_ZERO = "all_zero_scratchpad"
    ALL_FF = "all_ff_lost_ground"
    MISSING = "probe_missing"
    STALE = "stale_repeated_sample"
    OUT_OF_RANGE = "out_of_range"
    MALFORMED = "malformed_text"


class Sample(NamedTuple):
    """One probe read: a temperature, or the fault that made it unusable.

    Attributes:
        rom: Linux ROM id, e.g. ``28-0316a2797aff``.
        temp_c: temperature in degC, ``None`` when ``fault`` is set.
        fault: why the read was rejected, ``None`` when good.
        detail: one human-readable line (for logs, the console and events).
        raw: the 9 scratchpad bytes read (line 1), ``None`` when not available.
        source: ``"w1_slave"`` or ``"temperature"``.
    """

    rom: str
    temp_c: float | None
    fault: Fault | None
    detail: str
    raw: bytes | None = None
    source: str = "w1_slave"

    @property
    def ok(self) -> bool:
        """True when the sample carries a trusted temperature."""
        return self.fault is None

    def with_fault(self, fault: Fault, detail: str) -> "Sample":
        """This sample rejected for ``fault`` (temperature dropped)."""
        return self._replace(temp_c=None, fault=fault, detail=detail)


def crc8(data: bytes) -> int:
    """Dallas/Maxim 1-Wire CRC-8 (polynomial x^8 + x^5 + x^4 + 1, reflected 0x8C)."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def check_rom(rom: str) -> str:
    """Return ``rom`` if it is a Linux 1-Wire id (``28-0316a2797aff``), else raise BadRomId."""
    if not isinstance(rom, str) or not ROM_RE.match(rom):
        raise BadRomId(f"bad 1-Wire ROM id {rom!r}: expected family-12 hex digits, "
                       f"lower case, e.g. 28-0316a2797aff")
    return rom


def kernel_millidegrees(raw: int) -> int:
    """``t=`` as w1_therm prints it for a 16ths family: ``raw*1000/16`` truncated toward 0."""
    value = raw * 1000
    return value // 16 if value >= 0 else -((-value) // 16)


def _hex_bytes(text: str) -> bytes:
    return bytes(int(h, 16) for h in text.split())


def _malformed(rom: str, text: str, why: str, source: str = "w1_slave") -> Sample:
    shown = text[:90].encode("unicode_escape").decode("ascii")
    return Sample(rom, None, Fault.MALFORMED, f"{why}: '{shown}'", None, source)


def parse_w1_slave(text: str, rom: str = "") -> Sample:
    """Parse the text of a ``w1_slave`` file into a :class:`Sample` (never raises on data)."""
    if not text.strip():
        return Sample(rom, None, Fault.EMPTY, "empty read: the kernel gave up after its CRC "
                      "retries or the probe did not answer")
    lines = text.strip("\n").split("\n")
    if len(lines) != 2:
        return _malformed(rom, text, f"expected 2 lines, got {len(lines)}")
    m1, m2 = _LINE1.match(lines[0].strip()), _LINE2.match(lines[1].strip())
    if not m1 or not m2:
        return _malformed(rom, text, "not the w1_therm format '<9 hex bytes> : crc=xx YES|NO' "
                          "then '<9 hex bytes> t=<millidegrees>'")
    raw, verdict, t_milli = _hex_bytes(m1.group(1)), m1.group(3), int(m2.group(2))
    sample = Sample(rom, None, None, "", raw, "w1_slave")
    return _judge_scratchpad(sample, verdict == "YES", t_milli)


def _judge_scratchpad(sample: Sample, crc_yes: bool, t_milli: int) -> Sample:
    raw, hexs = sample.raw, sample.raw.hex(" ")
    if raw == b"\xff" * 9:
        return sample.with_fault(Fault.ALL_FF, f"scratchpad all ff ({hexs}): nothing drove the "
                                 "bus low, check the probe's ground and data wires")
    if not crc_yes or crc8(raw[:8]) != raw[8]:
        return sample.with_fault(Fault.CRC, f"CRC mismatch ({hexs}, computed "
                                 f"{crc8(raw[:8]):02x}): noise or a long/bad cable")
    if raw == bytes(9):
        return sample.with_fault(Fault.ALL_ZERO, "scratchpad all 00 (passes the CRC but is an "
                                 "empty bus read)")
    return _judge_temperature(sample, t_milli)


def _judge_temperature(sample: Sample, t_milli: int) -> Sample:
    raw, family = sample.raw, sample.rom[:2]
    reg = int.from_bytes(raw[0:2], "little", signed=True)
    if family and family not in SIXTEENTH_FAMILIES:
        temp_c = t_milli / 1000.0
    else:
        if kernel_millidegrees(reg) != t_milli:
            return sample.with_fault(Fault.MALFORMED, f"t={t_milli} does not match the "
                                     f"scratchpad register {reg} ({reg / 16:.4f} degC)")
        temp_c = reg / 16.0
    if family in SIXTEENTH_FAMILIES or not family:
        if reg == RAW_POWER_ON:
            sig = " with the power-on signature byte6=0c" if raw[6] == 0x0C else ""
            return sample.with_fault(Fault.POWER_ON, f"85.000 degC{sig}: power-on value, no "
                                     "conversion happened (supply brown-out?)")
        if reg == RAW_NO_POWER:
            return sample.with_fault(Fault.NO_POWER, "127.94 degC (0x07ff): the probe lacked "
                                     "power for the conversion (parasite power, weak pull-up)")
    if not MIN_C <= temp_c <= MAX_C:
        return sample.with_fault(Fault.OUT_OF_RANGE, f"{temp_c:.3f} degC is outside the "
                                 f"probe's range {MIN_C:g}..{MAX_C:g} degC")
    return sample._replace(temp_c=temp_c, detail=f"{temp_c:.3f} degC")


def parse_temperature(text: str, rom: str = "") -> Sample:
    """Parse a ``temperature`` file (``"-20062\\n"``, millidegrees; empty on failure).

    The kernel only fills it after a good CRC, but the scratchpad is not shown, so an all-zero
    scratchpad (which reads 0.000) cannot be told from a true 0 degC: prefer ``w1_slave``.
    """
    body = text.strip()
    if not body:
        return Sample(rom, None, Fault.EMPTY, "empty read: the kernel gave up after its CRC "
                      "retries or the probe did not answer", None, "temperature")
    if not re.fullmatch(r"-?\d+", body):
        return _malformed(rom, text, "not an integer of millidegrees", "temperature")
    milli = int(body)
    sample = Sample(rom, milli / 1000.0, None, f"{milli / 1000.0:.3f} degC", None, "temperature")
    if milli == kernel_millidegrees(RAW_POWER_ON):
        return sample.with_fault(Fault.POWER_ON, "85.000 degC: power-on value, no conversion")
    if milli == kernel_millidegrees(RAW_NO_POWER):
        return sample.with_fault(Fault.NO_POWER, "127.94 degC: the probe lacked power")
    if not MIN_C <= milli / 1000.0 <= MAX_C:
        return sample.with_fault(Fault.OUT_OF_RANGE, f"{milli / 1000.0:.3f} degC is outside "
                                 f"the probe's range")
    return sample


def parse_master_slaves(text: str) -> list[str]:
    """Parse ``w1_bus_master*/w1_master_slaves``: one id a line, or ``not found.``."""
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if ids == ["not found."]:
        return []
    return ids


class StaleDetector:
    """Flags a probe that keeps returning the *same raw bytes* for longer than physics allows.

    A DS18B20 at 12 bits resolves 0.0625 degC, and a freezer's air temperature moves by more
    than that within minutes (compressor cycles, door openings), so identical scratchpads for
    ``max_identical_s`` (default 30 min) mean the kernel or a clone chip is handing back an old
    sample.  Feed every sample of one probe in time order.

    Args:
        max_identical_s: seconds an unchanged raw value may last before it is called stale.
    """

    def __init__(self, max_identical_s: float = 1800.0):
        if max_identical_s <= 0:
            raise ValueError("max_identical_s must be > 0 seconds")
        self.max_identical_s = float(max_identical_s)
        self._key: object = None
        self._since: float = 0.0

    def check(self, sample: Sample, now: float) -> Sample:
        """Return ``sample``, or it marked STALE; ``now`` is its time in seconds."""
        if not sample.ok:
            return sample
        key = sample.raw if sample.raw is not None else sample.temp_c
        if key != self._key:
            self._key, self._since = key, now
            return sample
        held = now - self._since
        if held > self.max_identical_s:
            shown = sample.raw.hex(" ") if sample.raw is not None else f"{sample.temp_c} degC"
            return sample.with_fault(Fault.STALE, f"identical reading {shown} for {held:.0f} s "
                                     f"(more than {self.max_identical_s:.0f} s is not physical)")
        return sample
