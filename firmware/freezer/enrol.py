"""Enrolment check: which probes are on the bus, which are configured, which look genuine.

A genuine Maxim/Analog DS18B20 takes about 600 ms for a 12-bit conversion (datasheet maximum
750 ms); several clone families convert far faster (tens of ms) or at a fixed time whatever the
resolution, and differ in accuracy and failure modes (cpetrich/counterfeit_DS18B20).  Genuine
parts also have ROM ids ``28-0000xxxxxxxx`` (ROM bytes 5 and 6 zero); a different pattern is a
clone.  The kernel measures the conversion time when ``1`` is written to ``conv_time``.
"""
from __future__ import annotations

from typing import NamedTuple

from storeedge.drivers.onewire import OneWireError
from storeedge.firmware.freezer.rules import FreezerRules

GENUINE_MS = 600.0


class EnrolResult(NamedTuple):
    """One probe seen on the bus or named in the config.

    ``conversion_ms`` is the measured 12-bit conversion time (ms, None if not measured);
    ``verdict`` is ``ok``, ``suspect`` (likely a clone), ``missing`` (configured, not on the
    bus), ``unconfigured`` (on the bus, not in the config) or ``unknown`` (not measurable).
    """

    rom: str
    name: str | None
    on_bus: bool
    temp_c: float | None
    fault: str | None
    conversion_ms: float | None
    verdict: str
    notes: tuple[str, ...]


class Expect(NamedTuple):
    """What a genuine part does: 12-bit conversion time (ms) and the accepted band."""

    conversion_ms: float = GENUINE_MS
    tolerance: float = 0.25
    measure: bool = True


def rom_looks_genuine(rom: str) -> bool:
    """True when a DS18B20 ROM id follows the genuine pattern ``28-0000xxxxxxxx``."""
    return rom.startswith("28-0000")


def enrol(bus, rules: FreezerRules, *, expected_ms: float = GENUINE_MS,
          tolerance: float = 0.25, measure: bool = True) -> list[EnrolResult]:
    """Check every probe on ``bus`` and in ``rules``.

    Args:
        expected_ms: the genuine 12-bit conversion time, ms.
        tolerance: relative band around ``expected_ms`` accepted as genuine (0.25: 450..750).
        measure: measure conversion times (needs root on a Pi; takes ~1 s per probe).
    """
    by_rom = {p.rom: name for name, p in rules.probes.items()}
    on_bus = set(bus.list_probes())
    expect = Expect(expected_ms, tolerance, measure)
    return [_check_one(bus, rom, by_rom.get(rom), rom in on_bus, expect)
            for rom in sorted(on_bus | set(by_rom))]


def _check_one(bus, rom: str, name: str | None, present: bool, expect: Expect) -> EnrolResult:
    if not present:
        return EnrolResult(rom, name, False, None, "probe_missing", None, "missing",
                           ("configured but not on the bus: check wiring and the ROM id",))
    sample = bus.read(rom)
    notes, verdict, conv = [], "ok", None
    if not rom_looks_genuine(rom):
        notes.append("ROM id is not 28-0000xxxxxxxx: not a genuine Maxim DS18B20")
        verdict = "suspect"
    if expect.measure:
        try:
            conv = bus.measure_conversion_ms(rom)
        except OneWireError as exc:
            notes.append(f"conversion time not measured: {exc}")
            verdict = "unknown" if verdict == "ok" else verdict
    band = expect.tolerance * expect.conversion_ms
    if conv is not None and abs(conv - expect.conversion_ms) > band:
        notes.append(f"12-bit conversion took {conv:.0f} ms, genuine parts take "
                     f"~{expect.conversion_ms:.0f} ms: likely a clone")
        verdict = "suspect"
    if name is None:
        notes.append("on the bus but not in the config: add it under freezer.probes")
        verdict = "unconfigured"
    if sample.fault is not None:
        notes.append(f"read failed: {sample.detail}")
    return EnrolResult(rom, name, True, sample.temp_c,
                       sample.fault.value if sample.fault else None, conv, verdict, tuple(notes))
