"""Property tests: the parser never raises on any text, and judges every scratchpad right."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storeedge.drivers.onewire import Fault, parse_temperature, parse_w1_slave
from storeedge.drivers.onewire.parser import RAW_NO_POWER, RAW_POWER_ON, crc8
from storeedge.drivers.onewire.sim import scratchpad, w1_slave_text

ROM = "28-00000a1b2c3d"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_sample_never_an_exception(text):
    for parse in (parse_w1_slave, parse_temperature):
        s = parse(text, ROM)
        assert (s.temp_c is None) == (s.fault is not None)


@settings(max_examples=300, deadline=None)
@given(st.integers(-55 * 16, 125 * 16))
def test_every_valid_register_round_trips(reg):
    pad = scratchpad(reg)
    s = parse_w1_slave(w1_slave_text(pad, pad, True), ROM)
    if reg in (RAW_POWER_ON, RAW_NO_POWER):
        assert s.fault in (Fault.POWER_ON, Fault.NO_POWER)
    else:
        assert s.ok and s.temp_c == reg / 16


@settings(max_examples=300, deadline=None)
@given(st.integers(-55 * 16, 125 * 16), st.integers(0, 63))
def test_any_single_bit_error_is_caught(reg, bit):
    pad = bytearray(scratchpad(reg))
    pad[bit // 8] ^= 1 << (bit % 8)
    crc_ok = crc8(bytes(pad[:8])) == pad[8]
    s = parse_w1_slave(w1_slave_text(bytes(pad), scratchpad(reg), crc_ok), ROM)
    assert not crc_ok                       # CRC-8 detects every single-bit error
    assert s.fault is Fault.CRC and s.temp_c is None
