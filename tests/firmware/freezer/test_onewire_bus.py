"""SysfsBus on a real-format tree, and the simulated bus (physics, faults, kernel variants)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storeedge.drivers.exc import UnknownBackend
from storeedge.drivers.onewire import (BusNotFound, ConversionTimeUnsupported, Fault, SysfsBus,
                                       open_bus)
from storeedge.drivers.onewire.sim import FreezerPhysics, SimulatedBus, ThermalModel

FIXTURES = Path(__file__).parent / "fixtures"

ROM = "28-0316a2797aff"
ROM2 = "28-000005e2fdc3"


@pytest.fixture
def tree(tmp_path):
    """A /sys/bus/w1/devices look-alike with two probes, built from the fixtures."""
    (tmp_path / "w1_bus_master1").mkdir()
    shutil.copy(FIXTURES / "w1" / "slaves_two.w1_master_slaves",
                tmp_path / "w1_bus_master1" / "w1_master_slaves")
    for rom, name in ((ROM, "freezer_minus_20062"), (ROM2, "power_on_85000")):
        (tmp_path / rom).mkdir()
        shutil.copy(FIXTURES / "w1" / f"{name}.w1_slave", tmp_path / rom / "w1_slave")
    return tmp_path


def test_sysfs_lists_and_reads(tree):
    bus = SysfsBus(tree)
    assert bus.list_probes() == [ROM2, ROM]
    assert bus.read(ROM).temp_c == pytest.approx(-20.0625)
    assert bus.read(ROM2).fault is Fault.POWER_ON


def test_sysfs_missing_probe_is_a_fault_not_an_exception(tree):
    shutil.rmtree(tree / ROM)
    s = SysfsBus(tree).read(ROM)
    assert s.fault is Fault.MISSING and "not on the bus" in s.detail


def test_sysfs_without_bus_says_what_to_check(tmp_path):
    with pytest.raises(BusNotFound, match="w1-gpio"):
        SysfsBus(tmp_path / "nope").list_probes()


def test_sysfs_conv_time_needs_a_new_kernel(tree):
    with pytest.raises(ConversionTimeUnsupported, match="5.10"):
        SysfsBus(tree).measure_conversion_ms(ROM)


def test_backend_names(monkeypatch):
    with pytest.raises(UnknownBackend, match="sysfs, sim"):
        open_bus("w1-netlink")
    monkeypatch.setenv("STOREEDGE_ONEWIRE", "sim")
    bus = open_bus()
    try:
        assert bus.backend == "sim" and bus.list_probes() == []
        assert (bus.root / "w1_bus_master1" / "w1_master_slaves").read_text() == "not found.\n"
    finally:
        bus.close()


@pytest.fixture
def sim(clock):
    bus = SimulatedBus(clock=clock, kernel="old", seed=1)
    cab = ThermalModel(FreezerPhysics(setpoint_c=-20.0), clock.time())
    bus.add_probe(ROM, cab)
    yield bus, cab
    bus.close()


def test_sim_writes_real_format_files_that_the_real_reader_parses(sim, clock):
    bus, _ = sim
    clock.advance(60)
    s = bus.read(ROM)
    text = (bus.root / ROM / "w1_slave").read_text()
    assert text.count("\n") == 2 and " : crc=" in text and "YES" in text
    assert SysfsBus(bus.root).read(ROM).ok       # a plain reader of the same folder agrees
    assert -22.5 < s.temp_c < -17.5
    assert (bus.root / ROM / "temperature").read_text().strip().lstrip("-").isdigit()


def test_sim_physics_door_warms_compressor_pulls_down(sim, clock):
    bus, cab = sim
    clock.advance(3600)
    base = bus.read(ROM).temp_c
    cab.door_open = True
    clock.advance(300)
    warm = bus.read(ROM).temp_c
    assert warm > base + 5                       # 5 minutes open: several degrees warmer
    cab.door_open = False
    clock.advance(3600)
    assert bus.read(ROM).temp_c < base + 1.5     # the compressor recovered it


def test_sim_failed_compressor_warms_steadily(sim, clock):
    bus, cab = sim
    cab.compressor_failed = True
    temps = []
    for _ in range(6):
        clock.advance(1800)
        temps.append(bus.read(ROM).temp_c)
    assert all(b > a for a, b in zip(temps, temps[1:]))
    assert temps[-1] > -16                       # ~-14.5 after 3 h (product mass)


def test_sim_defrost_heats_then_recovers(clock):
    bus = SimulatedBus(clock=clock)
    start = clock.time()
    h, m = divmod(int(start % 86400) // 60 + 60, 60)     # a defrost one hour from now
    cab = ThermalModel(FreezerPhysics(defrost_starts_utc=(f"{h % 24:02d}:{m:02d}",),
                                      defrost_len_s=1200), start)
    bus.add_probe(ROM, cab)
    clock.advance(3600 + 1200)
    assert bus.read(ROM).temp_c > -12
    clock.advance(3 * 3600)
    assert bus.read(ROM).temp_c < -18
    bus.close()


@pytest.mark.parametrize("fault", [Fault.CRC, Fault.EMPTY, Fault.POWER_ON, Fault.NO_POWER,
                                   Fault.ALL_ZERO, Fault.ALL_FF, Fault.OUT_OF_RANGE,
                                   Fault.MALFORMED])
def test_sim_every_fault_on_demand_old_kernel(sim, clock, fault):
    bus, _ = sim
    bus.inject(ROM, fault, reads=2)
    assert bus.read(ROM).fault is fault
    assert bus.read(ROM).fault is fault
    assert bus.read(ROM).ok                      # the fault lasted exactly 2 reads


def test_sim_new_kernel_turns_crc_failures_into_empty_reads(clock):
    bus = SimulatedBus(clock=clock, kernel="new")
    bus.add_probe(ROM, ThermalModel(FreezerPhysics(), clock.time()))
    for fault in (Fault.CRC, Fault.ALL_FF):
        bus.inject(ROM, fault, reads=1)
        assert bus.read(ROM).fault is Fault.EMPTY
        assert (bus.root / ROM / "w1_slave").read_text() == ""
    bus.close()


def test_sim_vanish_and_return(sim, clock):
    bus, _ = sim
    bus.vanish(ROM)
    assert bus.list_probes() == []
    assert bus.read(ROM).fault is Fault.MISSING
    bus.clear(ROM)
    assert bus.list_probes() == [ROM] and bus.read(ROM).ok


def test_sim_stale_repeats_the_exact_previous_text(sim, clock):
    bus, _ = sim
    first = bus.read(ROM)
    bus.inject(ROM, Fault.STALE)
    texts = set()
    for _ in range(5):
        clock.advance(600)
        assert bus.read(ROM).raw == first.raw
        texts.add((bus.root / ROM / "w1_slave").read_text())
    assert len(texts) == 1


def test_sim_conversion_time_through_conv_time(sim):
    bus, _ = sim
    assert bus.measure_conversion_ms(ROM) == pytest.approx(600, rel=0.03)
    bus.probe(ROM).conversion_ms = 28.0            # a fast clone
    assert bus.measure_conversion_ms(ROM) == pytest.approx(28, rel=0.1)
