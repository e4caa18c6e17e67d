"""MQTT topic names (one place): ``se/v1/{store}/{kind}/{dev}/...``."""
from __future__ import annotations

from typing import NamedTuple

from storeedge.events import TOPIC_ROOT

EVENTS_ALL = f"{TOPIC_ROOT}/+/+/+/evt/#"
ACKS_ALL = f"{TOPIC_ROOT}/+/+/+/ack"
REPLAY_ALL = f"{TOPIC_ROOT}/+/+/+/cmd/replay"
BATCHES_ALL = f"{TOPIC_ROOT}/+/+/+/batch"


class DeviceTopic(NamedTuple):
    """The parts of a device topic."""

    store: str
    kind: str
    dev: str
    channel: str      # evt, batch, ack, state, cmd
    rest: str         # event type or command name ("" for ack/state)


def base(store: str, kind: str, dev: str) -> str:
    return f"{TOPIC_ROOT}/{store}/{kind}/{dev}"


def event(store: str, kind: str, dev: str, etype: str) -> str:
    return f"{base(store, kind, dev)}/evt/{etype}"


def batch(store: str, kind: str, dev: str) -> str:
    """Several events of one device in one frame (gateway -> store server, see batch.py)."""
    return f"{base(store, kind, dev)}/batch"


def ack(store: str, kind: str, dev: str) -> str:
    return f"{base(store, kind, dev)}/ack"


def state(store: str, kind: str, dev: str) -> str:
    return f"{base(store, kind, dev)}/state"


def command(store: str, kind: str, dev: str, name: str) -> str:
    return f"{base(store, kind, dev)}/cmd/{name}"


def parse(topic: str) -> DeviceTopic | None:
    """Split a device topic; None when it is not one of ours."""
    parts = topic.split("/")
    if len(parts) < 6 or "/".join(parts[:2]) != TOPIC_ROOT:
        return None
    return DeviceTopic(parts[2], parts[3], parts[4], parts[5], "/".join(parts[6:]))
