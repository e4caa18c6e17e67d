"""Shared by the network scenarios: one store PKI per test module."""
from __future__ import annotations

import pytest

from storeedge.pki import StorePKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A fresh store PKI (store s0042) for the module's scenarios."""
    return StorePKI.init(tmp_path_factory.mktemp("pki") / "pki", "s0042")
