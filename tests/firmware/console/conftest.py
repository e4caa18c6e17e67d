"""Fixtures for the console tests: a real config file, a real DeviceService (SQLite outbox, link
not started), simulated hardware on a private gpiozero MockFactory, a SimulatedClock.
Helpers live in console_rig.py (importable by the tests)."""
from __future__ import annotations


import pytest
import yaml

from helpers.console_rig import (CHEAP, SECRET, BenchConfig, Terminal, base_mapping,
                         make_target)

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.config import load_config
from storeedge.firmware.console.auth import LockoutPolicy
from storeedge.firmware.console.console import ConsoleParts, build_console
from storeedge.firmware.console.secret import hash_secret, parse_hash
from storeedge.firmware.console.session import SessionSettings


@pytest.fixture
def clock():
    return SimulatedClock()


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(base_mapping(tmp_path), sort_keys=False))
    return str(path)


@pytest.fixture
def service(config_path, clock):
    from storeedge.firmware.common.service import DeviceService

    svc = DeviceService(load_config(config_path, BenchConfig), clock=clock, app="console")
    yield svc
    svc.close()


@pytest.fixture
def factory():
    return new_mock_factory()


@pytest.fixture
def target(factory):
    t = make_target("freezer", factory)
    yield t
    # The simulated door starts closed (contact Button pressed): gpiozero's hold thread then
    # sleeps out its 1 s hold_time before close() can join it.  Opening the contact wakes it.
    factory.pin(t.rig.contact_pin).drive_high()
    t.close()


@pytest.fixture
def stored_secret():
    return parse_hash(hash_secret(SECRET, **CHEAP))


@pytest.fixture
def make_console(config_path, service, clock, stored_secret):
    def make(target, port_name="loop://", **settings):
        parts = ConsoleParts(config_path, target, service, clock, stored_secret, port_name)
        return build_console(parts, settings=SessionSettings(prompt_name="fz-1", **settings),
                             policy=LockoutPolicy(max_failures=3, base_s=30, max_s=900))
    return make


@pytest.fixture
def term(make_console, target):
    t = Terminal(make_console(target))
    t.login()
    return t
