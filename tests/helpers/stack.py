"""Build configs and run the event path (devices, gateway, store server) for tests."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from storeedge.firmware.common.config import config_from_dict, write_config_atomic
from storeedge.firmware.common.settings import DeviceConfig
from storeedge.firmware.gateway.config import GatewayConfig
from storeedge.server.config import StoreServerConfig

STORE = "s0042"
FAST_LINK = {"backoff_min_s": 0.1, "backoff_max_s": 1.0, "keepalive_s": 5,
             "resend_timeout_s": 1.0}


def device_dict(dev: str, url: str, workdir: Path, **outbox) -> dict:
    return {"device": {"id": dev, "kind": "sim", "store": STORE},
            "link": {"url": url, **FAST_LINK},
            "outbox": {"path": str(workdir / f"{dev}-outbox.db"), **outbox},
            "log": {"level": "warning"}}


def gateway_dict(down_url: str, up_url: str, workdir: Path, devices=None, **relay) -> dict:
    return {"device": {"id": "gw-1", "kind": "gateway", "store": STORE},
            "link": {"url": down_url, **FAST_LINK},
            "upstream": {"url": up_url, **FAST_LINK},
            "relay": {"db_path": str(workdir / "gateway.db"), "devices": devices,
                      "resend_timeout_s": 1.0, **relay},
            "log": {"level": "warning"}}


def store_dict(url: str, db: str, instance: str = "store-1", **server) -> dict:
    return {"server": {"id": instance, "db": db, "replay_after_s": 1.0, **server},
            "link": {"url": url, **FAST_LINK}, "log": {"level": "warning"}}


def device_config(*a, **k) -> DeviceConfig:
    return config_from_dict(device_dict(*a, **k), DeviceConfig)


def gateway_config(*a, **k) -> GatewayConfig:
    return config_from_dict(gateway_dict(*a, **k), GatewayConfig)


def store_config(*a, **k) -> StoreServerConfig:
    return config_from_dict(store_dict(*a, **k), StoreServerConfig)


def write_yaml(path: Path, mapping: dict) -> Path:
    write_config_atomic(path, mapping)
    return path


class Proc:
    """A storeedge process (``python -m storeedge ...``) that can be SIGKILLed and restarted."""

    def __init__(self, argv: list[str], log_path: Path, stdout=subprocess.DEVNULL):
        self.argv, self.log_path, self.stdout = argv, log_path, stdout
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Proc":
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", *self.argv], env=env,
                                     stdout=self.stdout, stderr=self._log)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def event_path(broker_factory, workdir: Path, **relay):
    """Two brokers, a gateway relay and a store server (SQLite) running in this process.

    Yields ``(down, up, relay, store)``; the store DB is ``workdir / "store.db"``.
    """
    from storeedge.firmware.gateway.relay import Relay
    from storeedge.server.consumer import StoreServer

    down, up = broker_factory("down"), broker_factory("up")
    gateway = Relay(gateway_config(down.url, up.url, workdir, **relay))
    store = StoreServer(store_config(up.url, f"sqlite:///{workdir}/store.db"))
    gateway.start()
    store.start()
    try:
        yield down, up, gateway, store
    finally:
        gateway.close()
        store.close()
