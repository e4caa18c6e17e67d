"""A whole store in network namespaces: devices, the gateway and the store server on their own
hosts, each broker where it belongs, TLS + ACL from the store PKI, faults per link.

::

    store ns:    store Mosquitto (TLS, :8884) + store server
        | uplink (veth)
    gw ns:       in-store Mosquitto (TLS, :8883) + gateway  (upstream via a relay on 127.0.0.1)
        | one veth per device
    dN ns:       simulated device  (broker via a relay on 127.0.0.1: delay and jitter live there)

Every client connects to a relay on its own 127.0.0.1 (:mod:`delayrelay`), so broker
certificates need only that address and delay/jitter can be set per link; loss, partitions
and rate limits act on the veths (:mod:`netrig`). Processes are real ``storeedge`` processes
started inside the namespaces; the device outboxes and the store database are files the
checker (:mod:`checker`) reads at the end.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers.checker import DeliveryReport, check_delivery, outbox_committed
from helpers.netrig import Host, Link, NetRig
from helpers.stack import wait_for
from storeedge.brokerconf import BrokerSpec, write_broker_config
from storeedge.brokerproc import mosquitto_binary
from storeedge.config import write_config_atomic
from storeedge.pki import StorePKI

STORE = "s0042"
IN_STORE_PORT, STORE_PORT = 8883, 8884
DEVICE_RELAY_PORT, UPLINK_RELAY_PORT = 9883, 9884
LINK = {"backoff_min_s": 0.1, "backoff_max_s": 2.0, "keepalive_s": 5, "resend_timeout_s": 2.0}


@dataclass
class Device:
    """One simulated device on its own host."""

    name: str
    host: Host
    link: Link
    config: Path
    outbox: Path
    proc: subprocess.Popen | None = None


@dataclass
class NetStore:
    """Build with :meth:`build`; stop with :meth:`close` (or use it as a context manager)."""

    rig: NetRig
    pki: StorePKI
    tmp: Path
    store: Host
    gw: Host
    uplink: Link
    uplink_delay_ms: float = 0.0
    relay_settings: dict = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, rig: NetRig, pki: StorePKI, tmp: Path, *, uplink_delay_ms: float = 0.0,
              relay: dict | None = None) -> "NetStore":
        """The store and gateway hosts with their brokers, the store server and the gateway."""
        store, gw = rig.host("store"), rig.host("gw")
        for ident, kind in (("gw-1", "gateway"), ("store-1", "store_server")):
            if pki.get(ident) is None:
                pki.enrol(ident, kind)
        return cls(rig, pki, Path(tmp), store, gw, rig.link(gw, store),
                   uplink_delay_ms, relay or {})

    def add_device(self, name: str, *, delay_ms: float = 0.0, jitter_ms: float = 0.0,
                   via: str | None = None, outbox: dict | None = None) -> Device:
        """A device host linked to the gateway, or to device ``via`` (a mesh hop that
        forwards its packets); enrolled in the PKI if new."""
        if self.pki.get(name) is None:
            self.pki.enrol(name, "sim")
        host = self.rig.host(name)
        gw_ip = self._gateway_ip(host, via)
        host.relay(f"127.0.0.1:{DEVICE_RELAY_PORT}", f"{gw_ip}:{IN_STORE_PORT}",
                   delay_ms, jitter_ms, seed=len(self.devices))
        link = self.rig.links[-1]
        cfg = self.tmp / f"{name}.yaml"
        write_config_atomic(cfg, self._device_dict(name, outbox or {}))
        dev = Device(name, host, link, cfg, self.tmp / f"{name}-outbox.db")
        self.devices[name] = dev
        return dev

    def start(self) -> None:
        """Brokers, store server and gateway (devices start with :meth:`start_device`)."""
        self._broker(self.store, "store", STORE_PORT)
        self._broker(self.gw, "in_store", IN_STORE_PORT)
        self.gw.relay(f"127.0.0.1:{UPLINK_RELAY_PORT}", f"{self.uplink.b_ip}:{STORE_PORT}",
                      self.uplink_delay_ms, 0.0)
        self.start_store_server()
        # a gateway forwarding before the store server's SUBACK loses those messages at the
        # broker (no subscriber yet): they come back by replay, after newer ones (out of order)
        if not wait_for(lambda: b"connected to" in (self.tmp / "store.log").read_bytes(), 60, 0.1):
            raise RuntimeError("the store server did not subscribe\n" + self.logs())
        self.start_gateway()

    def start_store_server(self) -> None:
        cfg = self.tmp / "store.yaml"
        write_config_atomic(cfg, self._store_dict())
        self.procs["store"] = self._python(self.store, "store", ["-m", "storeedge",
                                                                 "store-server", "--config",
                                                                 str(cfg)])

    def start_gateway(self) -> None:
        cfg = self.tmp / "gw.yaml"
        write_config_atomic(cfg, self._gateway_dict())
        self.procs["gateway"] = self._python(self.gw, "gateway", ["-m", "storeedge", "gateway",
                                                                  "--config", str(cfg)])

    def start_device(self, name: str, *, rate: float, count: int,
                     faketime: str | None = None) -> None:
        """Run the simulated device: ``count`` events at ``rate``/s, then keep delivering."""
        dev = self.devices[name]
        argv = ["-m", "storeedge.firmware.common.simdevice", "--config", str(dev.config),
                "--rate", str(rate), "--count", str(count), "--linger", "3600"]
        # libfaketime shifts the wall clock only: with a faked CLOCK_MONOTONIC, Python's timed
        # waits (pthread_cond_timedwait) never return
        prefix = ["env", "FAKETIME_DONT_FAKE_MONOTONIC=1", "faketime", "-f", faketime] \
            if faketime else []
        if faketime:   # libfaketime 0.9.10 fails time.sleep (EINVAL from an absolute
            # CLOCK_MONOTONIC clock_nanosleep); select's relative timeout is not faked
            argv = ["-c", _SLEEP_SHIM, *argv[2:]]
        dev.proc = self._python(dev.host, name, argv, prefix=prefix)

    # ------------------------------------------------------------------ faults

    def kill(self, what: str) -> None:
        """SIGKILL the gateway or store server process."""
        proc = self.procs[what]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def pause(self, what: str) -> None:
        os.kill(self.procs[what].pid, signal.SIGSTOP)

    def resume(self, what: str) -> None:
        os.kill(self.procs[what].pid, signal.SIGCONT)

    # ------------------------------------------------------------------ results

    def committed(self) -> dict[str, range]:
        return {name: outbox_committed(dev.outbox) for name, dev in self.devices.items()}

    def store_db(self) -> Path:
        return self.tmp / "store.db"

    def delivered(self, names: list[str] | None = None) -> bool:
        """Every device (or those named) has a store watermark covering all it committed."""
        marks, committed = self.watermarks(), self.committed()
        return all(marks.get(n, 0) >= committed[n].stop - 1 and committed[n].stop > 1
                   for n in (names if names is not None else committed))

    def watermarks(self) -> dict[str, int]:
        if not self.store_db().exists():
            return {}
        conn = sqlite3.connect(f"file:{self.store_db()}?mode=ro", uri=True, timeout=10)
        try:
            return dict(conn.execute("SELECT dev, wm FROM devices").fetchall())
        except sqlite3.OperationalError:
            return {}
        finally:
            conn.close()

    def wait_devices_done(self, timeout: float) -> bool:
        """Wait until every device has committed all its events (``count`` reached)."""
        return self.wait_devices_except(None, timeout)

    def wait_devices_except(self, skip: str | None, timeout: float) -> bool:
        """Like :meth:`wait_devices_done`, ignoring device ``skip`` (a live device)."""
        devices = [d for n, d in self.devices.items() if n != skip]
        return wait_for(lambda: self.running() and all(self._device_finished(d)
                                                       for d in devices), timeout, 0.2)

    def wait_delivered(self, timeout: float) -> bool:
        return wait_for(lambda: self.running() and self.delivered(), timeout, 0.25)

    def wait_marks(self, names: list[str], timeout: float) -> bool:
        """Wait until the store covers everything the named devices committed."""
        return wait_for(lambda: self.running() and self.delivered(names), timeout, 0.1)

    def running(self) -> bool:
        """True while every process started here runs; one that exited on its own (a crash,
        a device whose emit failed) raises at once with the logs, rather than leaving a wait
        to run out its whole timeout."""
        procs = {**{n: d.proc for n, d in self.devices.items() if d.proc is not None},
                 **self.procs}
        dead = sorted(name for name, proc in procs.items() if proc.poll() is not None)
        if dead:
            raise RuntimeError(f"process exited early: {dead}\n{self.logs()}")
        return True

    def check(self, *, ordered: bool = True, unrecoverable: bool = False) -> DeliveryReport:
        return check_delivery(self.store_db(), self.committed(), ordered=ordered,
                              unrecoverable=unrecoverable)

    def lose_gateway_disk(self) -> None:
        """The gateway's SD card dies: SIGKILL it, delete ``gateway.db*``, start it empty."""
        self.kill("gateway")
        for path in self.tmp.glob("gateway.db*"):
            path.unlink()
        self.start_gateway()

    def logs(self) -> str:
        """The tail of every process log (for an assertion message)."""
        out = []
        for log in sorted(self.tmp.glob("*.log")):
            text = log.read_text(errors="replace").strip().splitlines()[-25:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def close(self) -> None:
        for dev in self.devices.values():
            if dev.proc is not None and dev.proc.poll() is None:
                os.kill(dev.proc.pid, signal.SIGCONT)
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
        self.rig.close()

    def restart_broker(self, role: str, kill: bool = True) -> None:
        """SIGKILL (or stop) a broker and start it again on the same port and files."""
        proc = self.procs.pop(f"broker-{role}")
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        proc.wait(10)
        host = self.gw if role == "in_store" else self.store
        self._broker(host, role, IN_STORE_PORT if role == "in_store" else STORE_PORT)

    # ------------------------------------------------------------------ internals

    def _gateway_ip(self, host: Host, via: str | None) -> str:
        """Link ``host`` to the gateway (directly or through device ``via``); the gateway's IP."""
        if via is None:
            return self.rig.link(host, self.gw).b_ip
        hop = self.devices[via]
        far = self.rig.link(host, hop.host)
        hop.host.forwarding()
        host.route(hop.link.subnet, far.b_ip)
        self.gw.route(far.subnet, hop.link.a_ip)
        return hop.link.b_ip

    def _device_finished(self, dev: Device) -> bool:
        count = self._target_count(dev)
        try:
            return outbox_committed(dev.outbox).stop - 1 >= count
        except sqlite3.Error:
            return False

    @staticmethod
    def _target_count(dev: Device) -> int:
        argv = dev.proc.args if dev.proc is not None else []
        return int(argv[argv.index("--count") + 1]) if "--count" in argv else 0

    def _python(self, host: Host, name: str, argv: list[str],
                prefix: list[str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return host.popen([*(prefix or []), sys.executable, *argv], env=env,
                          stdout=subprocess.DEVNULL, stderr=log)

    def _broker(self, host: Host, role: str, port: int) -> None:
        workdir = self.tmp / f"broker-{role}"
        workdir.mkdir(exist_ok=True)
        spec = BrokerSpec(role=role, port=port, bind="0.0.0.0", name=f"{role}-broker",
                          hosts=("127.0.0.1",), persistence_dir=workdir,
                          log_file=workdir / "mosquitto.log",
                          extra=["user root"] if os.geteuid() == 0 else [])
        files = write_broker_config(self.pki, spec, workdir)
        proc = host.popen([mosquitto_binary(), "-c", str(files.conf)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[f"broker-{role}"] = proc
        _wait_listening(host, port)

    def _tls(self, ident: str, url: str) -> dict:
        files = self.pki.tls_files(ident)
        return {"url": url, "tls_ca": str(files.ca), "tls_cert": str(files.cert),
                "tls_key": str(files.key), **LINK}

    def _security(self, ident: str) -> dict:
        bundle = self.pki.bundle_dir(ident)
        return {"command_pub": str(bundle / "command.pub"), "e2e_key": str(bundle / "e2e.key")}

    def _device_dict(self, name: str, outbox: dict) -> dict:
        return {"device": {"id": name, "kind": "sim", "store": STORE},
                "link": self._tls(name, f"mqtts://127.0.0.1:{DEVICE_RELAY_PORT}"),
                "outbox": {"path": str(self.tmp / f"{name}-outbox.db"), **outbox},
                "security": self._security(name), "log": {"level": "warning"}}

    def _gateway_dict(self) -> dict:
        return {"device": {"id": "gw-1", "kind": "gateway", "store": STORE},
                "link": self._tls("gw-1", f"mqtts://127.0.0.1:{IN_STORE_PORT}"),
                "upstream": self._tls("gw-1", f"mqtts://127.0.0.1:{UPLINK_RELAY_PORT}"),
                "relay": {"db_path": str(self.tmp / "gateway.db"), "resend_timeout_s": 2.0,
                          **self.relay_settings},
                "security": {"e2e_key": str(self.pki.bundle_dir("gw-1") / "e2e.key")},
                "log": {"level": "info"}}

    def _store_dict(self) -> dict:
        return {"server": {"id": "store-1", "db": f"sqlite:///{self.store_db()}",
                           "replay_after_s": 2.0},
                "link": self._tls("store-1", f"mqtts://127.0.0.1:{STORE_PORT}"),
                "security": {"command_key": str(self.pki.command_key),
                             "e2e_master": str(self.pki.e2e_master)},
                "log": {"level": "info"}}


_SLEEP_SHIM = ("import runpy, select, time\n"
               "time.sleep = lambda s: select.select([], [], [], max(0.0, s)) and None\n"
               "runpy.run_module('storeedge.firmware.common.simdevice', run_name='__main__', "
               "alter_sys=True)\n")


def _wait_listening(host: Host, port: int, timeout: float = 10.0) -> None:
    code = ("import socket,sys,time\n"
            f"end=time.time()+{timeout}\n"
            "while time.time()<end:\n"
            " try:\n"
            f"  socket.create_connection(('127.0.0.1',{port}),timeout=0.5).close(); sys.exit(0)\n"
            " except OSError: time.sleep(0.05)\n"
            "sys.exit(1)\n")
    done = subprocess.run(["ip", "netns", "exec", host.ns, sys.executable, "-c", code])
    if done.returncode != 0:
        raise RuntimeError(f"nothing listens on port {port} in {host.ns}")
