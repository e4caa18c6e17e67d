"""Run a real Mosquitto broker process on a loopback port (demo, benchmarks, tests).

Production brokers are system services configured by the device image; this is for running
the whole event path on one machine.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


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


class BrokerURL(str):
    """A broker URL (``mqtts://127.0.0.1:PORT``) that remembers its :class:`Mosquitto`.

    Test helpers given only ``broker.url`` find the broker (and so the TLS identity to use)
    through ``url.broker``; everything else sees a plain string.
    """

    broker: "Mosquitto"


class Mosquitto:
    """A Mosquitto process with a generated config; restartable on the same port.

    Secure by default: a TLS listener that requires a client certificate from ``pki``, the
    identity taken from the certificate and the ACL of ``role`` (storeedge.brokerconf).
    ``insecure=True`` runs a plain anonymous listener instead and logs a warning.

    Args:
        workdir: folder for the config, ACL, persistence file and log.
        pki: the store PKI (storeedge.pki.StorePKI) identities come from.
        role: ``in_store``, ``store`` or ``both`` (one broker playing both, for tests/demos).
        persistence: keep queues in ``mosquitto.db`` across restarts.
        port: fixed port (default: a free one).
        max_queued: ``max_queued_messages`` per client.
        insecure: plain ``mqtt://`` without certificates or ACL (explicit; logged).
    """

    def __init__(self, workdir: Path, *, pki=None, role: str = "both", persistence: bool = False,
                 port: int | None = None, max_queued: int = 1_000_000, insecure: bool = False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.max_queued = max_queued
        self.pki, self.role, self.insecure = pki, role, insecure
        if pki is None and not insecure:
            raise ValueError("Mosquitto needs a store PKI (pki=StorePKI) or an explicit "
                             "insecure=True")
        if insecure:
            log.warning("broker on port %d is INSECURE: plain mqtt://, anonymous, no ACL",
                        self.port)
        self.acl_grants: frozenset[tuple[str, str]] = frozenset()
        self._lock = threading.Lock()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        url = BrokerURL(f"{'mqtt' if self.insecure else 'mqtts'}://127.0.0.1:{self.port}")
        url.broker = self
        return url

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def _spec(self):
        from storeedge.brokerconf import BrokerSpec
        extra = ["log_type information"]     # "Reloading config." is an information line
        if os.geteuid() == 0:
            extra.append("user root")     # keep the caller's user (CI runs as root)
        return BrokerSpec(role=self.role, port=self.port, name="test-broker",
                          persistence_dir=self.workdir if self.persistence else None,
                          log_file=self.log_path, max_queued=self.max_queued,
                          insecure=self.insecure, extra=extra)

    def _write_config(self) -> Path:
        from storeedge.brokerconf import write_broker_config
        files = write_broker_config(self.pki, self._spec(), self.workdir)
        self.acl_grants = files.grants
        return files.conf

    def start(self, timeout: float = 10.0) -> None:
        """Start and return once Mosquitto logged "running": it listens before it installs
        its signal handlers, and a SIGHUP (a :meth:`reload`) in between ends it."""
        conf = self._write_config()
        runs = self._log_count(b" running\n")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self._failure()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    if self._log_count(b" running\n") > runs:
                        return
                    time.sleep(0.01)
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {timeout} s")

    def _failure(self) -> str:
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        try:
            err += self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            pass
        return err.strip()

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

    # ------------------------------------------------------------------ identities

    def reload(self, timeout: float = 30.0) -> None:
        """Re-write the ACL from the PKI, SIGHUP the broker and wait until it is effective.

        Mosquitto 2.0.11 re-reads the ACL, the certificates and the CRL on SIGHUP (measured:
        docs/security.md). It logs ``Reloading config.`` in its single-threaded main loop
        before handling any further packet, so once the line is in the log every later
        connection and publish sees the new rules. A SIGHUP that arrives while it is still
        reloading is lost (it clears its reload flag when done: measured, 8 of 10 back-to-back
        SIGHUPs), so one is sent again every 0.5 s until a new line shows.
        """
        from storeedge.brokerconf import write_acl
        with self._lock:
            self.acl_grants = write_acl(self.pki, self.role, self.workdir / "mosquitto.acl")
            if self.proc is None or self.proc.poll() is not None:
                return
            before = self._reloads()
            self.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + timeout
            resend = time.monotonic() + 0.5
            while self._reloads() <= before:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited on SIGHUP: {self._failure()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"mosquitto on {self.port} did not reload in {timeout} s")
                if time.monotonic() > resend:
                    self.proc.send_signal(signal.SIGHUP)
                    resend = time.monotonic() + 0.5
                time.sleep(0.01)

    def _reloads(self) -> int:
        return self._log_count(b"Reloading config.")

    def _log_count(self, text: bytes) -> int:
        try:
            return self.log_path.read_bytes().count(text)
        except OSError:
            return 0

    def link(self, dev: str, kind: str = "sim") -> dict:
        """Link settings (``url``, ``tls_ca``, ``tls_cert``, ``tls_key``) for identity ``dev``.

        Enrols ``dev`` as ``kind`` in the PKI if it is not enrolled yet, and reloads this
        broker when its ACL does not yet grant ``dev`` anything.
        """
        if self.insecure:
            raise ValueError("this broker is insecure: use insecure_link()")
        self.ensure(dev, kind)
        files = self.pki.tls_files(dev)
        return {"url": str(self.url), "tls_ca": str(files.ca), "tls_cert": str(files.cert),
                "tls_key": str(files.key)}

    def ensure(self, dev: str, kind: str) -> None:
        """Enrol ``dev`` (as ``kind``) if needed and make sure this broker's ACL has it.

        An id enrolled with another kind (tests reuse ids across kinds) is revoked and
        enrolled again with ``kind``.
        """
        from storeedge.exc import PKIError
        current = self.pki.get(dev)
        if current is not None and not current.revoked and current.kind != kind:
            self.pki.revoke(dev)
            current = None
        if current is None or current.revoked:
            try:
                self.pki.enrol(dev, kind)
            except PKIError:
                now = self.pki.get(dev)
                if now is None or now.revoked or now.kind != kind:
                    raise                      # not a concurrent enrolment of the same id
        if (dev, kind) not in self.acl_grants:
            self.reload()

    def revoke(self, dev: str, restart: bool = False) -> None:
        """Revoke ``dev`` in the PKI and reload: new TLS handshakes with its certificate fail
        and it loses every ACL right. An open connection stays (with no rights) unless
        ``restart``: then the broker is restarted (SIGTERM) and every client reconnects."""
        self.pki.revoke(dev)
        self.reload()
        if restart:
            self.restart(kill=False)

    def insecure_link(self) -> dict:
        """Link settings for an explicitly insecure broker (plain ``mqtt://``)."""
        if not self.insecure:
            raise ValueError("this broker requires TLS client certificates: use link(dev)")
        return {"url": self.url}

    def client(self, dev: str, kind: str = "sim", client_id: str = "", **kwargs):
        """A raw paho MQTT 5 client with ``dev``'s certificate (not connected yet)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5, **kwargs)
        if not self.insecure:
            settings = self.link(dev, kind)
            client.tls_set(ca_certs=settings["tls_ca"], certfile=settings["tls_cert"],
                           keyfile=settings["tls_key"])
        return client


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
