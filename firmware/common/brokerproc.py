"""Run a real Mosquitto broker process on a loopback port (demo, benchmarks, tests).

Production brokers are system services configured by the device image; this is for running
the whole event path on one machine.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise FileNotFoundError("mosquitto not found: install it (apt-get install mosquitto) "
                            "or run scripts/setup.sh")


class Mosquitto:
    """A Mosquitto process with its own config; restartable on the same port.

    Args:
        workdir: folder for the config, persistence file and log.
        persistence: keep queues in ``mosquitto.db`` across restarts.
        port: fixed port (default: a free one).
    """

    def __init__(self, workdir: Path, *, persistence: bool = False, port: int | None = None,
                 max_queued: int = 1_000_000):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.max_queued = max_queued
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"max_queued_messages {self.max_queued}",
            "max_inflight_messages 0",
            "log_dest file " + str(self.workdir / "mosquitto.log"),
            "log_type error",
            "log_type warning",
        ]
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> None:
        conf = self._write_config()
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {timeout} s")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, kill: bool = True) -> None:
        """Stop (SIGKILL by default: queues not yet saved are lost) and start on the same port."""
        self.stop(kill=kill)
        self.start()


def subscribe_acked(client, topic_filter: str, qos: int = 1, timeout: float = 10.0) -> None:
    """Subscribe a raw paho client and wait for the broker's SUBACK (its loop must run).

    Until the SUBACK, a message another client publishes may find no subscriber and be gone;
    watchers in tests and benchmarks call this before anything they must see is published.
    """
    acked = threading.Event()
    previous = client.on_subscribe
    client.on_subscribe = lambda *_args: acked.set()
    try:
        client.subscribe(topic_filter, qos=qos)
        if not acked.wait(timeout):
            raise TimeoutError(f"no SUBACK for {topic_filter!r} within {timeout} s")
    finally:
        client.on_subscribe = previous
