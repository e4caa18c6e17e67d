"""Shared fixtures: real Mosquitto brokers (TLS + ACL from one session store PKI) and
PostgreSQL servers on free loopback ports."""
from __future__ import annotations

import pytest

from helpers.brokers import Mosquitto, free_port
from helpers.postgres import PostgresServer, postgres_available
from helpers.stack import STORE
from storeedge.pki import StorePKI

pytest_plugins = ["helpers.mqtt_peers"]


@pytest.fixture(scope="session")
def store_pki(tmp_path_factory) -> StorePKI:
    """The session's store PKI (store ``s0042``): every test broker trusts its CA.

    ``broker.link(dev, kind)`` enrols identities on demand (issuing a certificate takes ~1 ms).
    """
    return StorePKI.init(tmp_path_factory.mktemp("pki") / "store", STORE)


@pytest.fixture
def broker(tmp_path, store_pki):
    """A fresh TLS + ACL Mosquitto (role ``both``) on a free loopback port; stopped after.

    ``broker.url`` is ``mqtts://127.0.0.1:PORT``; ``broker.link(dev, kind)`` gives a link
    settings dict with ``dev``'s certificate; ``broker.client(dev, kind)`` a raw paho client.
    """
    b = Mosquitto(tmp_path / "broker", pki=store_pki)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path, store_pki):
    """Make more brokers: ``broker_factory(name, role="both", persistence=False)``.

    ``role``: ``in_store`` (devices + gateway), ``store`` (gateway + store servers) or ``both``;
    ``insecure=True`` gives a plain anonymous broker (logged as a warning).
    """
    made: list[Mosquitto] = []

    def make(name: str = "b", **kwargs) -> Mosquitto:
        if not kwargs.get("insecure"):
            kwargs.setdefault("pki", store_pki)
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
