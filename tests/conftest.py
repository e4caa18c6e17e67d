"""Shared fixtures: real Mosquitto brokers and PostgreSQL servers on free loopback ports."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers.brokers import Mosquitto, free_port  # noqa: E402
from helpers.postgres import PostgresServer, postgres_available  # noqa: E402


@pytest.fixture
def broker(tmp_path):
    """A fresh Mosquitto on a free loopback port (no persistence); stopped after the test."""
    b = Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path):
    """Make more brokers: ``broker_factory(name, persistence=False)``."""
    made: list[Mosquitto] = []

    def make(name: str = "b", **kwargs) -> Mosquitto:
        b = Mosquitto(tmp_path / f"broker-{name}", **kwargs)
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server for the session (initdb in a temp dir)."""
    if not postgres_available():
        pytest.fail("PostgreSQL binaries not found: run scripts/setup.sh (apt postgresql)")
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    server.start()
    yield server
    server.stop()


__all__ = ["free_port"]
