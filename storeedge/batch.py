"""Batch frames: several event envelopes in one MQTT message (gateway -> store server).

One PUBLISH and one PUBACK per event made paho's per-message path the limit of a backlog drain.
The gateway therefore packs the raw envelope bytes of one device's consecutive events into a
frame published on ``se/v1/{store}/{kind}/{dev}/batch``; the store server screens each element
exactly as it screens a single event, and sends the PUBACK only after every element's commit.

Frame layout (all integers big-endian)::

    b"SEB1"  then, per element:  u32 length  +  that many bytes (one JSON envelope)

Length-prefixed rather than newline-delimited: a device may publish pretty-printed JSON, and the
gateway forwards the bytes it committed unchanged.
"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator

from storeedge.exc import BatchError

MAGIC = b"SEB1"
_LEN = struct.Struct(">I")
OVERHEAD = _LEN.size            # bytes added per element


def encode_batch(payloads: Iterable[bytes]) -> bytes:
    """One frame holding ``payloads`` in order."""
    parts = [MAGIC]
    for payload in payloads:
        parts.append(_LEN.pack(len(payload)))
        parts.append(payload)
    return b"".join(parts)


def pack_batches(payloads: Iterable[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Group ``payloads`` in order into lists whose frame is at most ``max_bytes`` long.

    A payload too large to share a frame goes alone in its own (the receiver's single-event
    limit still applies to it).
    """
    group: list[bytes] = []
    size = len(MAGIC)
    for payload in payloads:
        need = OVERHEAD + len(payload)
        if group and size + need > max_bytes:
            yield group
            group, size = [], len(MAGIC)
        group.append(payload)
        size += need
    if group:
        yield group


def split_batch(frame: bytes, max_items: int = 100_000) -> list[bytes]:
    """The elements of a frame, in order.

    Raises:
        BatchError: wrong magic, a truncated length or element, no element, or more than
            ``max_items`` elements.
    """
    if not frame.startswith(MAGIC):
        raise BatchError(f"not a batch frame (starts with {bytes(frame[:4])!r}, "
                         f"expected {MAGIC!r})")
    view, pos, out = memoryview(frame), len(MAGIC), []
    while pos < len(frame):
        if pos + OVERHEAD > len(frame):
            raise BatchError(f"truncated length at byte {pos} of {len(frame)}")
        (length,) = _LEN.unpack_from(frame, pos)
        pos += OVERHEAD
        if pos + length > len(frame):
            raise BatchError(f"element {len(out)} claims {length} bytes, only "
                             f"{len(frame) - pos} left")
        out.append(bytes(view[pos:pos + length]))
        pos += length
        if len(out) > max_items:
            raise BatchError(f"more than {max_items} elements")
    if not out:
        raise BatchError("empty batch frame")
    return out
