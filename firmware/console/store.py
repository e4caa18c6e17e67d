"""Versioned config store: every commit is a numbered, immutable file; the live file follows.

Layout, for a live config ``/etc/storeedge/freezer.yaml``::

    /etc/storeedge/freezer.yaml                  the file the app reads (YAML)
    /etc/storeedge/freezer.yaml.versions/
        000001.yaml  000002.yaml ...              every committed version, newest last
        pending-confirm.json                      a `commit confirmed` awaiting `confirm`

Each version file starts with ``#@ name: value`` header lines (version, time, by, note) and the
live file is a copy of the newest version (YAML loaders ignore the header, which is comments).
Opening the store never writes the live file: a hand-written file is recorded as a version
as it is.  A commit edits the live YAML with a round trip (:func:`update_yaml`), so comments,
key order and layout of untouched lines survive.

A commit writes the version file, then the live file, each atomically (temp, fsync, rename,
fsync dir).  Recovery on open: if the live file equals the newest version all is well; if it
equals the one before, the newest was never made live (power cut between the two writes) and is
removed; if it equals neither, someone edited the live file by hand and it is recorded as a new
version ("external edit").  So the live file is always one whole version, old or new.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass

import yaml

from storeedge.atomic import fsync_dir, remove_stale_temps, write_atomic
from storeedge.config import NoAliasDumper
from storeedge.firmware.console.exc import StoreError

KEEP_VERSIONS = 50
PENDING = "pending-confirm.json"
_VERSION_FILE = re.compile(r"^(\d{6})\.yaml$")
_HEADER = re.compile(r"^#@ (\w+): (.*)$")


@dataclass(frozen=True)
class VersionInfo:
    """One committed version.

    Attributes:
        number: version number (1, 2, ...; never reused while the version exists).
        time: commit time, seconds since the epoch (UTC).
        by: who committed ("console", "console:auto-rollback", "external edit", ...).
        note: free text (e.g. "commit confirmed 5 min").
    """

    number: int
    time: float
    by: str
    note: str


@dataclass(frozen=True)
class PendingConfirm:
    """A `commit confirmed` that rolls back to ``rollback_to`` unless confirmed by ``deadline``.

    Attributes:
        version: the unconfirmed version.
        rollback_to: the version to restore.
        deadline: wall-clock epoch seconds of the automatic rollback.
    """

    version: int
    rollback_to: int
    deadline: float


def _render(info: VersionInfo, body: str) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.time))
    head = (f"#@ version: {info.number}\n#@ time: {stamp}\n#@ epoch: {info.time:.3f}\n"
            f"#@ by: {info.by}\n#@ note: {info.note}\n")
    return (head + body).encode("utf-8")


def _split(data: bytes) -> tuple[dict, str]:
    text = data.decode("utf-8")
    head: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (m := _HEADER.match(lines[i].rstrip("\n"))):
        head[m.group(1)] = m.group(2)
        i += 1
    return head, "".join(lines[i:])


def update_yaml(text: str, mapping: dict) -> str:
    """``text`` (the live YAML) changed to hold ``mapping``, keeping comments, key order, blank
    lines and flow/block style of everything that did not change (ruamel.yaml round trip).

    The result is checked with the strict config loader; if it does not read back as exactly
    ``mapping`` (or round-tripping fails), the plain :func:`dump_yaml` text is returned.
    """
    import io

    from storeedge.config import ConfigError, yaml_mapping
    try:
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError as RuamelError
    except ImportError:
        return dump_yaml(mapping)
    rt = YAML(typ="rt")
    rt.width = 4096
    try:
        doc = rt.load(text) if text.strip() else None
        if not isinstance(doc, dict):
            return dump_yaml(mapping)
        _merge(doc, mapping)
        out = io.StringIO()
        rt.dump(doc, out)
        result = out.getvalue()
        if yaml_mapping(result)[0] == mapping:
            return result
    except (RuamelError, ConfigError, ValueError, TypeError):
        pass
    return dump_yaml(mapping)


def _merge(node: dict, new: dict) -> None:
    """Make round-trip mapping ``node`` equal to ``new`` in place, touching only changes."""
    for key in [k for k in node if k not in new]:
        del node[key]
    for key, value in new.items():
        old = node.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value:
            _merge(old, value)
        elif key not in node or old != value or type(old) is not type(value):
            node[key] = value


def dump_yaml(mapping: dict) -> str:
    """The YAML text the store writes for ``mapping`` (block style, keys in given order)."""
    if not mapping:
        return "{}\n"
    return yaml.dump(mapping, Dumper=NoAliasDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=False)     # never &anchors: the config loader refuses them


class ConfigStore:
    """The live config file plus its numbered versions (see the module docstring).

    Args:
        path: the live config file the app reads.
        keep: how many versions to keep (oldest are pruned).
        clock_time: callable returning wall-clock epoch seconds (inject a clock's ``time``).
    """

    def __init__(self, path: str | os.PathLike, *, keep: int = KEEP_VERSIONS, clock_time=time.time):
        self.path = os.fspath(path)
        self.dir = self.path + ".versions"
        self.keep = keep
        self._now = clock_time
        os.makedirs(self.dir, exist_ok=True)
        self.recovery = self.recover()
        """What opening the store had to repair ("consistent" when nothing)."""

    # -- reading
    def numbers(self) -> list[int]:
        """Version numbers present, oldest first."""
        return sorted(int(m.group(1)) for n in os.listdir(self.dir)
                      if (m := _VERSION_FILE.match(n)))

    def _file(self, number: int) -> str:
        return os.path.join(self.dir, f"{number:06d}.yaml")

    def _read(self, path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from None

    def info(self, number: int) -> VersionInfo:
        """Header of version ``number``."""
        head, _ = _split(self._read(self._file(number)))
        return VersionInfo(number, float(head.get("epoch", 0)), head.get("by", "?"),
                           head.get("note", ""))

    def mapping(self, number: int) -> dict:
        """The config mapping stored as version ``number``."""
        _, body = _split(self._read(self._file(number)))
        data = yaml.safe_load(body)
        return data if isinstance(data, dict) else {}

    def active_number(self) -> int:
        """The live version's number."""
        return self.numbers()[-1]

    def active(self) -> dict:
        """The live config mapping."""
        return self.mapping(self.active_number())

    def history(self) -> list[VersionInfo]:
        """All versions, newest first."""
        return [self.info(n) for n in reversed(self.numbers())]

    # -- writing
    def commit(self, mapping: dict, *, by: str = "console", note: str = "") -> VersionInfo:
        """Write ``mapping`` as a new version and make it live; returns its info."""
        numbers = self.numbers()
        if numbers and self._live_body() != _split(self._read(self._file(numbers[-1])))[1]:
            raise StoreError(f"{self.path} was changed outside the console since version "
                             f"{numbers[-1]}; nothing written. Restart the console to record "
                             f"that edit as a version, then redo the change.")
        info = VersionInfo((numbers[-1] + 1) if numbers else 1, self._now(), by, note)
        self._publish(info, update_yaml(self._live_body() or "", mapping))
        return info

    def _publish(self, info: VersionInfo, body: str) -> None:
        data = _render(info, body)
        try:
            write_atomic(self._file(info.number), data)
            write_atomic(self.path, data)
        except OSError as exc:
            raise StoreError(f"commit of version {info.number} failed: {exc}") from exc
        self._prune()

    def _prune(self) -> None:
        numbers = self.numbers()
        for number in numbers[:max(0, len(numbers) - self.keep)]:
            os.unlink(self._file(number))
        if len(numbers) > self.keep:
            fsync_dir(self.dir)

    # -- recovery
    def recover(self) -> str:
        """Make the store consistent after a crash; returns what was done (for the log)."""
        remove_stale_temps(self.dir)
        remove_stale_temps(os.path.dirname(os.path.abspath(self.path)))
        live = self._live_body()
        numbers = self.numbers()
        if live is None:
            if not numbers:
                raise StoreError(f"config file {self.path} does not exist")
            self._publish_existing(numbers[-1])
            return "live file was missing: restored the newest version"
        bodies = [_split(self._read(self._file(n)))[1] for n in numbers[-2:]]
        if bodies and bodies[-1] == live:
            return "consistent"
        if len(bodies) == 2 and bodies[0] == live:
            os.unlink(self._file(numbers[-1]))
            fsync_dir(self.dir)
            return f"removed version {numbers[-1]}: its commit was interrupted"
        by = "initial" if not numbers else "external edit"
        info = VersionInfo(numbers[-1] + 1 if numbers else 1, self._now(), by, "")
        try:            # the live file itself is left as it is: starting changes no file
            write_atomic(self._file(info.number), _render(info, live))
        except OSError as exc:
            raise StoreError(f"cannot record {self.path} as version {info.number}: {exc}") \
                from exc
        self._prune()
        return f"recorded the live file as a new version ({by})"

    def _live_body(self) -> str | None:
        if not os.path.exists(self.path):
            return None
        return _split(self._read(self.path))[1]

    def _publish_existing(self, number: int) -> None:
        write_atomic(self.path, self._read(self._file(number)))

    # -- commit confirmed
    def pending(self) -> PendingConfirm | None:
        """The `commit confirmed` awaiting confirmation, if any."""
        path = os.path.join(self.dir, PENDING)
        if not os.path.exists(path):
            return None
        try:
            raw = json.loads(self._read(path))
            return PendingConfirm(int(raw["version"]), int(raw["rollback_to"]),
                                  float(raw["deadline"]))
        except (ValueError, KeyError, TypeError):
            return None

    def set_pending(self, pending: PendingConfirm | None) -> None:
        """Record (or clear, with None) the pending confirmation, atomically."""
        path = os.path.join(self.dir, PENDING)
        if pending is None:
            if os.path.exists(path):
                os.unlink(path)
                fsync_dir(self.dir)
            return
        data = json.dumps({"version": pending.version, "rollback_to": pending.rollback_to,
                           "deadline": pending.deadline}).encode("ascii")
        write_atomic(path, data)
