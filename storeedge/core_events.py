"""Event types of the shared service code (every device may emit these)."""
from __future__ import annotations

from dataclasses import dataclass

from storeedge.events import Prio, doc_field, event_type


@event_type("device.started", prio=Prio.OPERATIONAL)
class DeviceStarted:
    """The app started: which one, which version, and what its outbox held."""

    app: str
    version: str
    pending: int = doc_field("events waiting for acknowledgement", "events")
    last_seq: int


@event_type("device.command", prio=Prio.OPERATIONAL)
class DeviceCommand:
    """A command received over MQTT and what came of it."""

    name: str
    id: str
    by: str
    ok: bool
    result: dict | None = None
    error: str | None = None
    role: str = doc_field("the signer's role (associate, manager, technician, store_server); "
                          "empty for an unsigned command accepted in insecure mode", default="")


@event_type("device.commands_refused", prio=Prio.OPERATIONAL)
class CommandsRefused:
    """Commands refused before any handler ran, summarised (at most one event a minute).

    Reasons: malformed, unsigned, bad_signature, wrong_device, expired, replayed,
    role_not_allowed, unknown_command, rate_limited, queue_full, retained.
    """

    count: int = doc_field("refusals since the previous summary", "commands")
    reasons: dict[str, int]
    total: int = doc_field("refusals since the service started", "commands")
    last_name: str = ""
    last_detail: str = ""


@event_type("outbox.salvaged", prio=Prio.LOSS)
class OutboxSalvaged:
    """The outbox file was corrupt: it was moved aside and its intact rows recovered."""

    moved_to: str
    reason: str
    recovered: int = doc_field("events copied to the fresh outbox")
    unreadable: int = doc_field("rows or pages that could not be read")
    lost: list[list[int]] = doc_field(
        "seq ranges [first, last] that are gone for good; receivers stop waiting for them and "
        "record them as lost", default_factory=list)


@event_type("device.update_failed", prio=Prio.OPERATIONAL)
class UpdateFailed:
    """An A/B update was installed but its trial boot did not commit (the app did not get
    healthy, or the boot never came up): the device runs its old slot again (images/)."""

    slot: str = doc_field("the root slot the update was written to (A or B)")
    running: str = doc_field("the committed slot the device runs again")
    version: str
    reason: str
    installed_at: str = ""


@event_type("gateway.gap_unrecoverable", prio=Prio.LOSS)
class GapUnrecoverable:
    """From a gateway: seqs of a device that no one holds any more (a gateway database was
    lost after acknowledging them and the device has pruned them).  The store records them
    as an ``unrecoverable`` gap and stops waiting for them."""

    dev: str
    kind: str
    first: int = doc_field("first seq gone for good")
    last: int = doc_field("last seq gone for good")
    held_from: int = doc_field("oldest seq the device still held")


@event_type("gateway.status", prio=Prio.OPERATIONAL)
class GatewayStatus:
    """A gateway's own health, every ``relay.status_every_s`` seconds and on a link change."""

    up: bool = doc_field("connected to the store broker")
    down: bool = doc_field("connected to the in-store broker")
    rejects: dict[str, int] = doc_field(
        "messages rejected since the gateway database was created, by reason")
    backlog: dict[str, int] = doc_field(
        "per device: seqs held but not yet confirmed by the store (events)")
    forwarded: int = doc_field("events sent upstream by this process")
    commands_dropped: int = 0


@dataclass
class FieldSummary:
    """min / max / last of one numeric field over the coalesced events."""

    min: float
    max: float
    last: float


@event_type("telemetry.coalesced", prio=Prio.TELEMETRY)
class TelemetryCoalesced:
    """Telemetry events merged under storage pressure (priority 3 only, never 0-2).

    ``covers`` lists the seq ranges ``[first, last]`` this summary replaces; a receiver counts
    them as delivered.
    """

    of_type: str
    count: int
    first_ts: str
    last_ts: str
    covers: list[list[int]]
    fields: dict[str, FieldSummary]


@event_type("sim.counter", prio=Prio.OPERATIONAL)
class SimCounter:
    """A numbered event from a simulated device (demo, fault tests)."""

    n: int
    pad: str = ""


@event_type("sim.reading", prio=Prio.TELEMETRY)
class SimReading:
    """A telemetry reading from a simulated device (demo, storage-pressure tests)."""

    value: float
    n: int = 0
