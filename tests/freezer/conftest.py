"""Fixtures of the freezer area (1-Wire driver, freezer app)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from storeedge.drivers.clock import SimulatedClock

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parent))   # freezer_helpers


@pytest.fixture
def w1_text():
    """Read a real-format sysfs text fixture by file name."""
    def read(name: str) -> str:
        return (FIXTURES / "w1" / name).read_bytes().decode("ascii")
    return read


@pytest.fixture
def clock():
    """A simulated clock at 2026-11-18 22:13:20 UTC (moves only when the test says so)."""
    return SimulatedClock()

