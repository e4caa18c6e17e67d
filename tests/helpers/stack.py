"""Build configs and run the event path (devices, gateway, store server) for tests."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from storeedge.config import config_from_dict, write_config_atomic
from storeedge.settings import DeviceConfig
from storeedge.firmware.gateway.config import GatewayConfig
from storeedge.server.config import StoreServerConfig

STORE = "s0042"
FAST_LINK = {"backoff_min_s": 0.1, "backoff_max_s": 1.0, "keepalive_s": 5,
             "resend_timeout_s": 1.0}


GATEWAY_ID = "gw-1"


def link_for(url, dev: str, kind: str) -> dict:
    """The ``link`` settings of identity ``dev`` on the broker behind ``url``.

    ``url`` is a test broker's ``url`` (it knows its broker: TLS with ``dev``'s certificate,
    enrolled on demand) or a plain string (used as is, e.g. a dead port).
    """
    broker = getattr(url, "broker", None)
    if broker is None or broker.insecure:
        return {"url": str(url), **FAST_LINK}
    return {**broker.link(dev, kind), **FAST_LINK}


def _pki_of(*urls):
    for url in urls:
        broker = getattr(url, "broker", None)
        if broker is not None and broker.pki is not None:
            return broker.pki
    return None


def device_security(url, dev: str) -> dict:
    """``security`` of a device (or gateway): its bundle's ``command.pub`` and ``e2e.key``."""
    pki = _pki_of(url)
    if pki is None:
        return {"insecure": True}
    bundle = pki.bundle_dir(dev)
    return {"command_pub": str(bundle / "command.pub"), "e2e_key": str(bundle / "e2e.key")}


def device_dict(dev: str, url, workdir: Path, kind: str = "sim", **outbox) -> dict:
    """A device config (TLS identity ``dev`` on the broker behind ``url``)."""
    link = link_for(url, dev, kind)
    return {"device": {"id": dev, "kind": kind, "store": STORE},
            "link": link,
            "outbox": {"path": str(workdir / f"{dev}-outbox.db"), **outbox},
            "security": device_security(url, dev),
            "log": {"level": "warning"}}


def gateway_dict(down_url, up_url, workdir: Path, devices=None, **relay) -> dict:
    """The gateway ``gw-1`` (identity ``gw-1``, kind ``gateway`` on both brokers)."""
    return {"device": {"id": GATEWAY_ID, "kind": "gateway", "store": STORE},
            "link": link_for(down_url, GATEWAY_ID, "gateway"),
            "upstream": link_for(up_url, GATEWAY_ID, "gateway"),
            "relay": {"db_path": str(workdir / "gateway.db"), "devices": devices,
                      "resend_timeout_s": 1.0, **relay},
            "security": device_security(down_url, GATEWAY_ID),
            "log": {"level": "warning"}}


def store_security(url) -> dict:
    """``security`` of a store server: the PKI's command key and end-to-end master."""
    pki = _pki_of(url)
    if pki is None:
        return {"insecure": True}
    return {"command_key": str(pki.command_key), "e2e_master": str(pki.e2e_master)}


def store_dict(url, db: str, instance: str = "store-1", **server) -> dict:
    """A store server ``instance`` (identity = instance id, kind ``store_server``)."""
    return {"server": {"id": instance, "db": db, "replay_after_s": 1.0, **server},
            "link": link_for(url, instance, "store_server"),
            "security": store_security(url), "log": {"level": "warning"}}


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
    """Two TLS + ACL brokers (in-store, store), a gateway relay and a store server (SQLite)
    running in this process, each with its own identity (``gw-1``, ``store-1``).

    Yields ``(down, up, relay, store)``; the store DB is ``workdir / "store.db"``.
    """
    from storeedge.firmware.gateway.relay import Relay
    from storeedge.server.consumer import StoreServer

    down, up = broker_factory("down", role="in_store"), broker_factory("up", role="store")
    gateway = Relay(gateway_config(down.url, up.url, workdir, **relay))
    store = StoreServer(store_config(up.url, f"sqlite:///{workdir}/store.db"))
    gateway.start()
    store.start()
    try:
        yield down, up, gateway, store
    finally:
        gateway.close()
        store.close()
