"""Where the freezer app keeps what must survive a restart: HACCP records and open alarms.

Open alarms are saved to a small JSON file (temp file, fsync, rename, fsync folder) each time
they change, so an unacknowledged alarm is still open, still escalating, after a reboot or an
update, and an acknowledgement is never asked for twice.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from typing import NamedTuple

from storeedge.firmware.freezer.alarms import Alarm
from storeedge.firmware.freezer.exc import RecordFileError

log = logging.getLogger(__name__)


class Storage(NamedTuple):
    """Files of the freezer app (on the data partition).

    ``haccp_path``: append-only HACCP records; ``alarms_path``: open alarms (None: kept in
    memory only); ``missed_after_s``: a HACCP check later than this is recorded missed.
    """

    haccp_path: str
    alarms_path: str | None = None
    missed_after_s: float = 1800.0


def load_alarms(path: str | None) -> list[Alarm]:
    """The open alarms saved in ``path`` ([] when there is no file or it is unreadable)."""
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as f:
            docs = json.load(f)
        return [Alarm(**d) for d in docs["open"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("saved alarms in %s unreadable (%s): starting without them", path, exc)
        return []


def save_alarms(path: str | None, alarms: list[Alarm]) -> None:
    """Replace ``path`` atomically with ``alarms`` (no-op when ``path`` is None)."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    text = json.dumps({"open": [dataclasses.asdict(a) for a in alarms]}, indent=1)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".alarms-", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise RecordFileError(f"cannot save open alarms to {path}: {exc}") from exc
