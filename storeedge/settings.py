"""Config sections every device shares: device identity, MQTT link, outbox, logging."""
from __future__ import annotations

import re

from storeedge import apps
from storeedge.config import ConfigError, LiveChoices, section, setting

ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"
KINDS = LiveChoices(lambda: apps.device_kinds() + ("store_server", "sim"))
"""Kinds a config's ``device.kind`` may name: every registered app, the store server, ``sim``."""
LOG_LEVELS = ("debug", "info", "warning", "error")
MQTT_URL = r"mqtts?://[A-Za-z0-9_.\-\[\]:]+(:[0-9]{1,5})?"


@section
class DeviceSection:
    """Who this device is: the identity of every event it sends."""

    id: str = setting("dev-1", doc="device id, unique in the store", pattern=ID_PATTERN)
    kind: str = setting("sim", doc="device kind", choices=KINDS)
    store: str = setting("s0001", doc="store id", pattern=ID_PATTERN)


@section
class LinkSection:
    """The MQTT 5 link to the in-store broker."""

    url: str = setting("mqtt://127.0.0.1:1883", doc="broker URL (mqtt:// or mqtts://)",
                       pattern=MQTT_URL)
    username: str | None = setting(None, doc="broker user name")
    password: str | None = setting(None, doc="broker password", secret=True)
    tls_ca: str | None = setting(None, doc="CA certificate file (mqtts)")
    tls_cert: str | None = setting(None, doc="client certificate file (mqtts)")
    tls_key: str | None = setting(None, doc="client key file (mqtts)", secret=True)
    tls_dir: str | None = setting(None, doc="device bundle folder (storeedge pki enrol: ca.crt "
                                            "and the one <id>.crt/<id>.key), for the tls_* "
                                            "files not set")
    keepalive_s: int = setting(30, unit="s", min=5, max=600, doc="MQTT keep-alive")
    session_expiry_s: int = setting(7 * 86400, unit="s", min=0, max=2**32 - 1,
                                    doc="broker keeps the session this long while offline")
    backoff_min_s: float = setting(0.5, unit="s", min=0.05, max=60,
                                   doc="first reconnect delay; doubles up to backoff_max_s")
    backoff_max_s: float = setting(30.0, unit="s", min=1, max=3600, doc="reconnect delay cap")
    resend_timeout_s: float = setting(5.0, unit="s", min=0.2, max=600,
                                      doc="re-send events above the watermark after this long "
                                          "without progress")
    window: int = setting(1000, unit="events", min=1, max=100000,
                          doc="events sent beyond the acknowledged watermark")

    def check(self) -> None:
        port = re.search(r":([0-9]+)$", self.url)
        if port and not 1 <= int(port.group(1)) <= 65535:
            raise ConfigError("url", f"port {port.group(1)} is outside 1..65535 (the broker's "
                                     "TLS port is usually 8883)")
        if self.backoff_max_s < self.backoff_min_s:
            raise ConfigError("backoff_max_s", f"{self.backoff_max_s} is below backoff_min_s "
                                               f"({self.backoff_min_s})")


@section
class OutboxSection:
    """The durable outbox (SQLite): every event is here before anyone is told it exists."""

    path: str = setting("outbox.db", doc="SQLite file (on the data partition)")
    max_bytes: int = setting(64 * 2**20, unit="bytes", min=64 * 1024, max=64 * 2**30,
                             doc="bound on stored events")
    reserve_fraction: float = setting(0.1, min=0.0, max=0.5,
                                      doc="share of max_bytes only priority 0-1 events may use")
    max_event_bytes: int = setting(256 * 1024, unit="bytes", min=1024, max=16 * 2**20,
                                   doc="largest accepted encoded event")
    commit_interval_ms: float = setting(2.0, unit="ms", min=0, max=1000,
                                        doc="group-commit gathering time")
    keep_acked: int = setting(1000, unit="events", min=0, max=10**6,
                              doc="acknowledged events kept for the console's history")
    coalesce_interval_s: int = setting(3600, unit="s", min=60, max=86400,
                                       doc="telemetry coalescing bucket under storage pressure")

    def check(self) -> None:
        if self.max_event_bytes > self.max_bytes // 4:
            raise ConfigError("max_event_bytes", f"{self.max_event_bytes} bytes is more than a "
                                                 f"quarter of max_bytes ({self.max_bytes})")


@section
class SecuritySection:
    """End-to-end trust: who may command this device, and the key its events are sealed with.

    Files come from ``storeedge pki enrol`` (a device's bundle); secrets stay in 0600 files.
    """

    command_pub: str | None = setting(None, doc="the store's Ed25519 command-verification "
                                                "public key (PEM); commands must be signed by it")
    e2e_key: str | None = setting(None, doc="this device's end-to-end event key file (its events "
                                            "are sealed with it; only the store server can check)",
                                  secret=True)
    insecure: bool = setting(False, doc="accept unsigned commands, send unsealed events and allow "
                                        "plain mqtt:// (tests and bench only; logged as a warning)")


def check_secure_links(cfg, names: tuple[str, ...] = ("link",)) -> None:
    """Secure by default: each link is ``mqtts://`` with a client certificate, unless the
    config says ``security.insecure: true`` (tests and bench; the link logs a warning)."""
    if cfg.security.insecure:
        return
    for name in names:
        link = getattr(cfg, name)
        if not link.url.startswith("mqtts://"):
            raise ConfigError(f"{name}.url", f"{link.url} is plain MQTT: use mqtts:// with the "
                              "device's certificate (storeedge pki enrol), or set "
                              "security.insecure: true (tests only)")
        for key in ("tls_ca", "tls_cert", "tls_key"):
            if not getattr(link, key) and not link.tls_dir:
                raise ConfigError(f"{name}.{key}", "required with mqtts:// (the files of "
                                  "the device bundle from storeedge pki enrol)")


@section
class LogSection:
    """Logging."""

    level: str = setting("info", doc="log level", choices=LOG_LEVELS)


@section
class DeviceConfig:
    """The sections every device app has; apps subclass this and add their own section."""

    device: DeviceSection = setting(DeviceSection)
    link: LinkSection = setting(LinkSection)
    outbox: OutboxSection = setting(OutboxSection)
    security: SecuritySection = setting(SecuritySection)
    log: LogSection = setting(LogSection)

    def check(self) -> None:
        check_secure_links(self)
