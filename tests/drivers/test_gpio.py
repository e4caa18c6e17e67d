"""drivers/gpio: the pin factory by name; simulated pins chosen through the environment (the
qemu boot test, a laptop) are an explicit flag and say so in the log."""
from __future__ import annotations

import logging

import pytest

from storeedge.drivers import gpio
from storeedge.drivers.exc import UnknownBackend


@pytest.fixture(autouse=True)
def fresh_factories(monkeypatch):
    monkeypatch.setattr(gpio, "_factories", {})


def test_mock_from_the_environment_is_said_once(monkeypatch, caplog):
    monkeypatch.setenv(gpio.GPIO_ENV, "mock")
    with caplog.at_level(logging.WARNING, logger="storeedge.gpio"):
        first = gpio.pin_factory()
        assert gpio.pin_factory() is first
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["GPIO backend 'mock' from $STOREEDGE_GPIO: simulated pins, nothing "
                        "real is driven or read"]


def test_mock_named_by_the_caller_is_not_a_warning(monkeypatch, caplog):
    monkeypatch.delenv(gpio.GPIO_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="storeedge.gpio"):
        gpio.pin_factory("mock")
    assert caplog.records == []


def test_unknown_backend_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(gpio.GPIO_ENV, "sysfs")
    with pytest.raises(UnknownBackend, match="unknown GPIO backend 'sysfs'"):
        gpio.pin_factory()
