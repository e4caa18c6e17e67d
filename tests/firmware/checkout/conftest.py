"""Fixtures of the checkout tests: the real palm detector model (fetched from its PyPI wheel
by the project's own script when missing) and small synthetic lanes."""
from __future__ import annotations

import pytest

from storeedge.drivers.camera.lane import scripted
from storeedge.drivers.camera.synthetic import SyntheticLaneCamera


@pytest.fixture(scope="session")
def palm_model() -> str:
    from storeedge.firmware.checkout.models.fetch import fetch

    return fetch()


@pytest.fixture(scope="session")
def detector(palm_model):
    from storeedge.firmware.checkout.detector.litert import LiteRTPalmDetector

    det = LiteRTPalmDetector(palm_model, edgetpu="off")
    yield det
    det.close()


@pytest.fixture
def lane_camera():
    """Factory: a synthetic lane camera for a basket of pass kinds."""

    def make(kinds, seed=5, level="easy", fps=15.0, **kw):
        return SyntheticLaneCamera(scripted(seed, list(kinds), level), fps=fps, **kw)

    return make
