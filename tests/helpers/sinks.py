"""An in-memory :class:`~storeedge.firmware.common.runner.EventSink` for app tests."""
from __future__ import annotations

from typing import Any, Callable


class RecordingSink:
    """Keeps every emitted ``(body, ts)``, counts heartbeats, keeps command handlers."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, float | None]] = []
        self.heartbeats = 0
        self.commands: dict[str, Callable] = {}

    def emit(self, body: Any, ts: float | None = None) -> None:
        self.events.append((body, ts))

    def heartbeat(self) -> None:
        self.heartbeats += 1

    def on_command(self, name: str, handler: Callable) -> None:
        self.commands[name] = handler

    @property
    def bodies(self) -> list:
        """The emitted bodies, in order."""
        return [body for body, _ in self.events]
