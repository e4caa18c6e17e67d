"""Gateway config: its identity, the local (device-side) broker, the store broker, its store."""
from __future__ import annotations

import re

from storeedge.config import ConfigError, section, setting
from storeedge.settings import (ID_PATTERN, DeviceSection, LinkSection,
                                                LogSection, SecuritySection, check_secure_links)


@section
class RelaySection:
    """How the relay stores and forwards."""

    db_path: str = setting("gateway.db", doc="SQLite store (on the data partition)")
    devices: list[str] | None = setting(None, doc="enrolled device ids; null accepts any device")
    max_payload_bytes: int = setting(256 * 1024, unit="bytes", min=1024, max=16 * 2**20,
                                     doc="larger messages are rejected")
    forward_window: int = setting(2000, unit="events", min=1, max=10**6,
                                  doc="events per device sent beyond the store's watermark")
    uplink_window: int = setting(3000, unit="events", min=1, max=10**6,
                                 doc="events in flight upstream (sent, not yet confirmed by "
                                     "the store) of every device with a backlog together; "
                                     "live devices (at most quantum held) are not limited by "
                                     "it. Bounds how long a live event waits at the store "
                                     "behind a drain")
    quantum: int = setting(250, unit="events", min=1, max=100000,
                           doc="events per device per forwarding round (fairness)")
    batch_bytes: int = setting(128 * 1024, unit="bytes", min=0, max=64 * 2**20,
                               doc="forward a device's events in frames of up to this size on "
                                   ".../batch (one message, one PUBACK); 0: one message per "
                                   "event. Keep it at most the store server's max_batch_bytes")
    resend_timeout_s: float = setting(5.0, unit="s", min=0.2, max=600,
                                      doc="re-send above the store watermark after this long "
                                          "without progress")
    keep_confirmed: int = setting(10000, unit="events", min=0, max=10**7,
                                  doc="confirmed events kept per device as history")
    status_every_s: float = setting(30.0, unit="s", min=0.5, max=3600,
                                    doc="a gateway.status event this often (and on a link change)")
    recovery_wait_s: float = setting(2.0, unit="s", min=0, max=60,
                                     doc="after connecting upstream, wait this long for the store's "
                                         "retained watermarks before own events and gap reports")
    commit_gather_ms: float = setting(0.0, unit="ms", min=0, max=100,
                                      doc="extra time to gather a group commit")

    def check(self) -> None:
        for dev in self.devices or []:
            if not re.fullmatch(ID_PATTERN, dev):
                raise ConfigError("devices", f"{dev!r} is not a valid device id")


@section
class GatewayConfig:
    """Config of ``storeedge gateway``."""

    device: DeviceSection = setting(DeviceSection)
    link: LinkSection = setting(LinkSection, doc="the in-store broker the devices publish to")
    upstream: LinkSection = setting(LinkSection, doc="the store server's broker")
    relay: RelaySection = setting(RelaySection)
    security: SecuritySection = setting(SecuritySection, doc="e2e_key seals what the gateway "
                                        "itself creates (gateway-attested events)")
    log: LogSection = setting(LogSection)

    def check(self) -> None:
        check_secure_links(self, ("link", "upstream"))
