"""Fixtures for the dock door tests (helpers live in door_rig.py, importable by tests)."""
from __future__ import annotations


import pytest

from helpers.door_rig import make_rig


@pytest.fixture
def rig(tmp_path):
    r = make_rig(tmp_path)
    yield r
    r.ctl.close()
    r.ctl.p.relay.close()
    r.ctl.p.state.close()
