"""Config of ``storeedge store-server``."""
from __future__ import annotations

from storeedge.config import ConfigError, section, setting
from storeedge.settings import (ID_PATTERN, LinkSection, LogSection,
                                               check_secure_links)


@section
class ServerSection:
    """Identity and database of one store-server instance."""

    id: str = setting("store-1", doc="instance id (several may share one database)",
                      pattern=ID_PATTERN)
    db: str = setting("sqlite:///store.db",
                      doc="sqlite:///FILE (relative), sqlite:////ABS/FILE or postgresql://...")
    share_group: str = setting("storeedge", doc="MQTT 5 shared-subscription group",
                               pattern=ID_PATTERN)
    max_payload_bytes: int = setting(256 * 1024, unit="bytes", min=1024, max=16 * 2**20,
                                     doc="larger events are rejected")
    max_batch_bytes: int = setting(4 * 2**20, unit="bytes", min=64 * 1024, max=64 * 2**20,
                                   doc="larger batch frames (from a gateway) are rejected")
    replay_after_s: float = setting(3.0, unit="s", min=0.2, max=3600,
                                    doc="a hole in seq older than this is recorded and a "
                                        "replay requested")
    republish_s: float = setting(5.0, unit="s", min=0.5, max=3600,
                                 doc="period of watermark re-publication")


@section
class StoreSecuritySection:
    """The store server's keys: it signs commands and checks every device's sealed events."""

    command_key: str | None = setting(None, doc="Ed25519 command-signing private key (PEM, 0600)",
                                      secret=True)
    e2e_master: str | None = setting(None, doc="master secret from which each device's "
                                               "end-to-end event key is derived (0600)",
                                     secret=True)
    insecure: bool = setting(False, doc="store events that carry no seal and allow plain "
                                        "mqtt:// (tests and bench only; logged as a warning)")


@section
class WebSection:
    """The store page (server/web): where it listens and how sessions behave."""

    enabled: bool = setting(False, doc="serve the store page next to the consumer")
    host: str = setting("127.0.0.1", doc="listen address (0.0.0.0: every interface)")
    port: int = setting(8080, min=0, max=65535, doc="listen port (0: any free port)")
    tls_cert: str | None = setting(None, doc="PEM certificate: serve HTTPS, Secure cookies")
    tls_key: str | None = setting(None, doc="PEM private key of tls_cert", secret=True)
    session_ttl_s: float = setting(8 * 3600.0, unit="s", min=60, max=7 * 86400,
                                   doc="a login lasts this long")
    lockout_after: int = setting(5, min=1, max=100, doc="failed logins in a row that lock "
                                                        "an account")
    lockout_s: float = setting(300.0, unit="s", min=1, max=86400, doc="lock duration")
    max_body_bytes: int = setting(64 * 1024, unit="bytes", min=1024, max=16 * 2**20,
                                  doc="larger requests are refused (413)")
    door_key: str | None = setting(None, doc="dock-door signing key (PEM from `storeedge dock_door "
                                             "keygen`) for codes issued in the page",
                                   secret=True)
    poll_s: float = setting(0.25, unit="s", min=0.05, max=5, doc="live-alert poll period")


@section
class StoreServerConfig:
    """Config of ``storeedge store-server``."""

    server: ServerSection = setting(ServerSection)
    link: LinkSection = setting(LinkSection, doc="the store broker")
    security: StoreSecuritySection = setting(StoreSecuritySection)
    web: WebSection = setting(WebSection, doc="the store page")
    log: LogSection = setting(LogSection)

    def check(self) -> None:
        check_secure_links(self)
        sec = self.security
        if not sec.e2e_master and not sec.insecure:
            raise ConfigError("security.e2e_master", "required: the end-to-end master secret "
                              "file from `storeedge pki init` (or security.insecure: true to "
                              "store unsealed events)")
