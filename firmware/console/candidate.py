"""The candidate configuration: edits made with `set`/`unset`, shown by `diff`, applied by `commit`.

The candidate is the *sparse* mapping written in the config file (only what differs from the
defaults is stored), so a commit keeps the file short and readable.  Every edit is validated at
once against the whole config with the strict validation; a refused edit changes nothing.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from storeedge.firmware.console.exc import ConfigValueError
from storeedge.firmware.console.schema import Schema


@dataclass(frozen=True)
class Change:
    """One difference between two configs (values already rendered, secrets masked).

    ``old``/``new`` are None when the key is absent on that side.
    """

    key: str
    old: str | None
    new: str | None


class Candidate:
    """An editable copy of a config mapping, checked against ``schema`` on every edit.

    Args:
        schema: the device's config schema.
        base: the committed (live) mapping the candidate starts from.
    """

    def __init__(self, schema: Schema, base: dict):
        self.schema = schema
        self.reset(base)

    def reset(self, base: dict) -> None:
        """Drop all edits; start again from ``base``."""
        self.base = copy.deepcopy(base)
        self.data = copy.deepcopy(base)

    def set(self, key: str, text: str) -> Any:
        """Set ``key`` to the value typed as ``text``; returns the parsed value.

        Raises:
            ConfigValueError: unknown key, unreadable value or a value the validation refuses
                (names the key, the reason and the allowed range); the candidate is unchanged.
        """
        info = self.schema.resolve(key)
        if not info.is_leaf:
            raise ConfigValueError(key, "is a section; set one of its keys",
                                   "see 'show config " + key + "'")
        value = self.schema.parse_value(info, text)
        trial = copy.deepcopy(self.data)
        _put(trial, key.split("."), value)
        self.schema.validate(trial, key)
        self.data = trial
        return value

    def unset(self, key: str) -> bool:
        """Remove ``key`` from the candidate so its default applies; False if it was not set."""
        self.schema.resolve(key)
        trial = copy.deepcopy(self.data)
        if not _drop(trial, key.split(".")):
            return False
        self.schema.validate(trial, key)
        self.data = trial
        return True

    def replace(self, mapping: dict) -> None:
        """Load ``mapping`` (e.g. an old version) as the candidate, after validating it."""
        self.schema.validate(mapping)
        self.data = copy.deepcopy(mapping)

    def changes(self, old: dict | None = None, new: dict | None = None) -> list[Change]:
        """Effective differences ``old`` -> ``new`` (default: committed -> candidate)."""
        before = self.schema.effective(self.base if old is None else old)
        after = self.schema.effective(self.data if new is None else new)
        out = []
        for key in sorted(set(before) | set(after)):
            if key in before and key in after and before[key] == after[key]:
                continue
            out.append(Change(key, self._show(key, before), self._show(key, after)))
        return out

    def _show(self, key: str, values: dict) -> str | None:
        if key not in values:
            return None
        return self.schema.show(key, values[key])

    @property
    def dirty(self) -> bool:
        """True if the candidate's effective config differs from the committed one."""
        return self.data != self.base and bool(self.changes())

    def effective_items(self, prefix: str = "") -> list[tuple[str, str]]:
        """(key, shown value) of the candidate's effective config under ``prefix``."""
        values = self.schema.effective(self.data)
        if prefix:
            self.schema.resolve(prefix)
        keep = [k for k in values if not prefix or k == prefix or k.startswith(prefix + ".")]
        return [(k, self.schema.show(k, values[k])) for k in sorted(keep)]


def _put(data: dict, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        child = data.get(part)
        if not isinstance(child, dict):
            child = {}
            data[part] = child
        data = child
    data[parts[-1]] = value


def _drop(data: dict, parts: list[str]) -> bool:
    for part in parts[:-1]:
        child = data.get(part)
        if not isinstance(child, dict):
            return False
        data = child
    if parts[-1] not in data:
        return False
    del data[parts[-1]]
    return True

