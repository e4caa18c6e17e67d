"""Fixtures for the console tests: a real config file, real DeviceService (SQLite outbox, link
not started), simulated hardware on a private gpiozero MockFactory, a SimulatedClock."""
from __future__ import annotations

import os

import pytest
import yaml

from storeedge.drivers.clock import SimulatedClock
from storeedge.drivers.gpio import new_mock_factory
from storeedge.firmware.common.config import load_config, section, setting
from storeedge.firmware.common.settings import DeviceConfig
from storeedge.firmware.console.auth import LockoutPolicy
from storeedge.firmware.console.console import ConsoleParts, build_console
from storeedge.firmware.console.secret import hash_secret, parse_hash
from storeedge.firmware.console.session import SessionSettings
from storeedge.firmware.console.targets import SimRig, SimulatedTarget

SECRET = "bench-secret-42"
CHEAP = dict(n=2 ** 10, r=8, p=1)        # fast scrypt for tests; production uses 2**14


@section
class ProbeSection:
    """One probe."""

    rom: str = setting("28-000000000000", doc="ROM id", pattern=r"28-[0-9a-f]{12}")
    interval_s: float = setting(60.0, unit="s", min=10, max=900, doc="sampling interval")


@section
class BenchSection:
    """App section of the test device."""

    threshold_c: float = setting(-18.0, unit="degC", min=-40, max=10, doc="alarm threshold")
    enabled: bool = setting(True, doc="alarms on")
    mode: str = setting("normal", choices=("normal", "defrost"), doc="mode")
    api_token: str | None = setting(None, doc="token", secret=True)
    tags: list[str] = setting([], doc="labels")
    probes: dict[str, ProbeSection] = setting({}, doc="probes by name")


@section
class BenchConfig(DeviceConfig):
    """Device config used by the console tests."""

    bench: BenchSection = setting(BenchSection)


def base_mapping(tmp_path) -> dict:
    return {"device": {"id": "fz-1", "kind": "freezer", "store": "s0042"},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "bench": {"threshold_c": -20.0,
                      "probes": {"p1": {"rom": "28-0316a2797aff", "interval_s": 60}}}}


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


def make_target(kind, factory, **rig):
    return SimulatedTarget(kind, BenchConfig, factory, rig=SimRig(**rig))


@pytest.fixture
def target(factory):
    t = make_target("freezer", factory)
    yield t
    t.close()


@pytest.fixture
def stored_secret():
    return parse_hash(hash_secret(SECRET, **CHEAP))


@pytest.fixture
def make_console(config_path, service, clock, stored_secret):
    def make(target, **settings):
        parts = ConsoleParts(config_path, target, service, clock, stored_secret, "loop://")
        return build_console(parts, settings=SessionSettings(prompt_name="fz-1", **settings),
                             policy=LockoutPolicy(max_failures=3, base_s=30, max_s=900))
    return make


class Terminal:
    """Drives a Session directly: keystrokes in, screen text out."""

    def __init__(self, console):
        self.out = bytearray()
        self.session = console.session(self.out.extend)

    def type(self, text: str | bytes) -> str:
        start = len(self.out)
        self.session.feed(text.encode("ascii") if isinstance(text, str) else text)
        return self.out[start:].decode("ascii")

    def run(self, line: str) -> str:
        return self.type(line + "\r")

    def login(self, secret: str = SECRET) -> str:
        return self.type(secret + "\r")


@pytest.fixture
def term(make_console, target):
    t = Terminal(make_console(target))
    t.login()
    return t


def events_of(service, prefix="console."):
    return service.recent_events(n=500, type=prefix)


def files_in(path):
    return sorted(os.listdir(path))
