"""Fixtures of the freezer area (1-Wire driver, freezer app)."""
from __future__ import annotations

from pathlib import Path

import pytest

from storeedge.drivers.clock import SimulatedClock

FIXTURES = Path(__file__).parent / "fixtures"


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

