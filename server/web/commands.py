"""Commands from the page to devices: signed with the store's command key (server/commands.py).

The page never sends an unsigned command unless the store server runs with
``security.insecure: true`` (tests and bench only; a warning is logged at start).
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import NamedTuple

from storeedge import topics
from storeedge.server.web.exc import CommandError

log = logging.getLogger(__name__)


class DeviceRef(NamedTuple):
    """The device a command is for."""

    store: str
    kind: str
    dev: str


class PageCommands:
    """Sends device commands for the page.

    Args:
        link: a started MqttLink to the store broker (None: commands disabled).
        db: the store database (the sender's counters live there).
        command_key: path of the store's Ed25519 command key (PEM), or None.
        insecure: allow unsigned commands when there is no key (logged as a warning).
    """

    def __init__(self, link, db, command_key: str | None, insecure: bool = False):
        self.link, self.sender, self.insecure = link, None, insecure
        if link is not None and command_key:
            from storeedge.server.commands import CommandSender
            from storeedge.signing import load_signing_key
            self.sender = CommandSender(link, load_signing_key(command_key), db)
        elif link is not None and insecure:
            log.warning("store page: no security.command_key; commands are sent UNSIGNED "
                        "(insecure mode)")

    @property
    def enabled(self) -> bool:
        return self.link is not None and (self.sender is not None or self.insecure)

    def send(self, to: DeviceRef, name: str, args: dict, by: str, role: str) -> str:
        """Sign and publish ``name`` to device ``to``; returns the command id (CommandError
        if it cannot be sent)."""
        store, kind, dev = to
        if self.link is None:
            raise CommandError("commands are disabled: the page has no link to the store broker")
        if not self.link.connected.is_set():
            raise CommandError("the store broker is not reachable; try again in a moment")
        if self.sender is not None:
            try:
                return self.sender.send(store, kind, dev, name, args, by, role)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        if not self.insecure:
            raise CommandError("commands are disabled: security.command_key is not set")
        cmd_id = str(uuid.uuid4())
        doc = {"id": cmd_id, "by": by, "args": args}
        self.link.publish(topics.command(store, kind, dev, name),
                          json.dumps(doc, separators=(",", ":")).encode())
        return cmd_id
