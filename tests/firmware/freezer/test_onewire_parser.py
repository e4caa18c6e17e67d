"""Parser of w1_therm sysfs texts, on real-format fixtures."""
from __future__ import annotations

import pytest

from storeedge.drivers.onewire import (BadRomId, Fault, StaleDetector, check_rom, crc8,
                                       parse_master_slaves, parse_temperature, parse_w1_slave)

ROM = "28-0316a2797aff"

GOOD = [
    ("doc_23125.w1_slave", 23.125),
    ("librasp1_20687.w1_slave", 20.6875),
    ("pastebin_18250.w1_slave", 18.25),
    ("freezer_minus_20062.w1_slave", -20.0625),
    ("freezer_minus_0062.w1_slave", -0.0625),
    ("crlf.w1_slave", 23.125),
]

BAD = [
    ("power_on_85000.w1_slave", Fault.POWER_ON),
    ("no_power_127937.w1_slave", Fault.NO_POWER),
    ("all_zero.w1_slave", Fault.ALL_ZERO),
    ("all_ff.w1_slave", Fault.ALL_FF),
    ("crc_no_retained.w1_slave", Fault.CRC),
    ("crc_yes_but_wrong.w1_slave", Fault.CRC),
    ("empty.w1_slave", Fault.EMPTY),
    ("truncated.w1_slave", Fault.MALFORMED),
    ("garbage.w1_slave", Fault.MALFORMED),
    ("t_mismatch.w1_slave", Fault.MALFORMED),
]


@pytest.mark.parametrize("name,expected", GOOD)
def test_good_reads(w1_text, name, expected):
    s = parse_w1_slave(w1_text(name), ROM)
    assert s.ok, s.detail
    assert s.temp_c == pytest.approx(expected, abs=1e-9)
    assert s.raw is not None and len(s.raw) == 9


@pytest.mark.parametrize("name,fault", BAD)
def test_bad_reads_are_rejected_with_a_reason(w1_text, name, fault):
    s = parse_w1_slave(w1_text(name), ROM)
    assert s.fault is fault
    assert s.temp_c is None and not s.ok
    assert len(s.detail) > 15


def test_crc_no_never_trusts_t_even_when_plausible(w1_text):
    text = w1_text("crc_no_retained.w1_slave")
    assert "t=-21062" in text          # a perfectly plausible freezer value ...
    assert parse_w1_slave(text, ROM).temp_c is None   # ... that must not be used


def test_power_on_detail_names_the_signature(w1_text):
    assert "byte6=0c" in parse_w1_slave(w1_text("power_on_85000.w1_slave"), ROM).detail


def test_malformed_detail_quotes_the_text(w1_text):
    assert "Connection error" in parse_w1_slave(w1_text("garbage.w1_slave"), ROM).detail


def test_crc8_matches_real_samples():
    assert crc8(bytes.fromhex("4b014b467fff0510")) == 0xE1
    assert crc8(bytes.fromhex("5005 4b467fff0c10")) == 0x1C
    assert crc8(bytes(8)) == 0


@pytest.mark.parametrize("name,temp,fault", [
    ("ok_23125.temperature", 23.125, None),
    ("minus_20062.temperature", -20.062, None),
    ("power_on.temperature", None, Fault.POWER_ON),
    ("no_power.temperature", None, Fault.NO_POWER),
    ("empty.temperature", None, Fault.EMPTY),
    ("garbage.temperature", None, Fault.MALFORMED),
])
def test_temperature_file(w1_text, name, temp, fault):
    s = parse_temperature(w1_text(name), ROM)
    assert s.fault is fault and s.source == "temperature"
    assert s.temp_c == (pytest.approx(temp) if temp is not None else None)


def test_master_slaves(w1_text):
    assert parse_master_slaves(w1_text("slaves_two.w1_master_slaves")) == [
        "28-0316a2797aff", "28-000005e2fdc3"]
    assert parse_master_slaves(w1_text("slaves_none.w1_master_slaves")) == []


@pytest.mark.parametrize("rom", ["28-0316A2797AFF", "28_0316a2797aff", "28-0316a2797af", "", None])
def test_bad_rom_ids(rom):
    with pytest.raises(BadRomId, match="ROM id"):
        check_rom(rom)


def test_stale_detector_flags_identical_bytes_only_after_the_limit(w1_text):
    det = StaleDetector(max_identical_s=1800)
    same = parse_w1_slave(w1_text("freezer_minus_20062.w1_slave"), ROM)
    other = parse_w1_slave(w1_text("freezer_minus_0062.w1_slave"), ROM)
    assert det.check(same, 0).ok
    assert det.check(same, 1800).ok                 # at the limit: still plausible
    stale = det.check(same, 1860)
    assert stale.fault is Fault.STALE and "1860 s" in stale.detail
    assert det.check(other, 1920).ok                # the bytes moved: trusted again
    assert det.check(other, 1980).ok


def test_stale_detector_ignores_faulty_samples(w1_text):
    det = StaleDetector(60)
    empty = parse_w1_slave("", ROM)
    for t in range(0, 600, 60):
        assert det.check(empty, t).fault is Fault.EMPTY
    with pytest.raises(ValueError):
        StaleDetector(0)
