"""What the console knows about a device's config class: key lookup, value parsing, masking.

Validation is exactly :func:`storeedge.config.config_from_dict`, the same code
``--validate-config`` runs; this module only finds the declared type/range of a dotted key (also
inside ``dict[str, Section]`` maps, e.g. ``freezer.probes.p1.interval_s``) so that a typed value
can be parsed and a refusal can state the allowed range.
"""
from __future__ import annotations

import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, NamedTuple

import yaml

from storeedge.config import (ConfigError, SettingSpec, config_from_dict,
                                              config_to_dict, spec_of, yaml_value)
from storeedge.firmware.common.liveconfig import flatten
from storeedge.firmware.console.exc import ConfigValueError

MASK = "********"


class KeyInfo(NamedTuple):
    """A resolved dotted key: its declared Python type and setting spec."""

    key: str
    type: Any
    spec: SettingSpec

    @property
    def is_leaf(self) -> bool:
        return not is_dataclass(_strip_optional(self.type))


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner[0] if len(inner) == 1 else tp
    return tp


def allowed_text(info: KeyInfo) -> str:
    """Human text for what ``info`` accepts, e.g. ``10..900 s`` or ``one of: a, b``."""
    spec, tp = info.spec, _strip_optional(info.type)
    unit = f" {spec.unit}" if spec.unit else ""
    parts = []
    if spec.choices:
        parts.append("one of: " + ", ".join(str(c) for c in spec.choices))
    if spec.min is not None and spec.max is not None:
        parts.append(f"{spec.min:g}..{spec.max:g}{unit}")
    elif spec.min is not None:
        parts.append(f">= {spec.min:g}{unit}")
    elif spec.max is not None:
        parts.append(f"<= {spec.max:g}{unit}")
    if spec.pattern:
        parts.append(f"pattern {spec.pattern}")
    label = {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(tp)
    if not parts and label:
        parts.append(label)
    if tp is not info.type:
        parts.append("or null")
    return ", ".join(parts)


class Schema:
    """The console's view of a config class ``cls`` (a ``DeviceConfig`` subclass)."""

    def __init__(self, cls: type):
        self.cls = cls

    def resolve(self, key: str) -> KeyInfo:
        """Find the declared type of dotted ``key``; raises ConfigValueError if unknown."""
        tp: Any = self.cls
        spec = SettingSpec()
        done: list[str] = []
        for part in key.split("."):
            tp = _strip_optional(tp)
            if is_dataclass(tp):
                tp, spec = self._field(tp, part, done)
            elif typing.get_origin(tp) is dict and part:
                tp = typing.get_args(tp)[1]
            else:
                raise ConfigValueError(key, f"{'.'.join(done)} has no sub-keys")
            done.append(part)
        return KeyInfo(key, tp, spec)

    def _field(self, cls: type, name: str, done: list[str]) -> tuple[Any, SettingSpec]:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name == name:
                return hints[name], spec_of(f)
        where = ".".join(done) or "the top level"
        allowed = ", ".join(f.name for f in fields(cls))
        raise ConfigValueError(".".join(done + [name]), f"unknown key in {where}", allowed)

    def parse_value(self, info: KeyInfo, text: str) -> Any:
        """Turn typed ``text`` into a value of ``info``'s type (str settings take it as-is)."""
        tp = _strip_optional(info.type)
        if tp is not info.type and text in ("null", "none", "~"):
            return None
        if tp is str:
            return text
        if tp in (int, float):
            try:
                return tp(text)          # also 1e3, which YAML 1.1 reads as text
            except ValueError:
                pass
        try:
            return yaml_value(text)         # no aliases/anchors, no .nan/.inf
        except ConfigError as exc:
            raise ConfigValueError(info.key, f"cannot read {text!r} as a value: {exc.reason}",
                                   allowed_text(info)) from None

    def validate(self, mapping: dict, key_hint: str = "") -> Any:
        """Run the strict config validation; a refusal names the key, reason and range."""
        try:
            return config_from_dict(mapping, self.cls)
        except ConfigError as exc:
            key = exc.key or key_hint
            try:
                allowed = allowed_text(self.resolve(key)) if key else ""
            except ConfigValueError:
                allowed = ""
            if allowed and "allowed" in exc.reason:
                allowed = ""
            raise ConfigValueError(key, exc.reason, allowed) from None

    def effective(self, mapping: dict) -> dict[str, Any]:
        """Every leaf value (defaults filled in), flattened to dotted keys."""
        return flatten(config_to_dict(self.validate(mapping)))

    def is_secret(self, key: str) -> bool:
        """True if ``key`` is declared ``secret=True`` (unknown keys count as not secret)."""
        try:
            return self.resolve(key).spec.secret
        except ConfigValueError:
            return False

    def show(self, key: str, value: Any) -> str:
        """``value`` as console text, masked if ``key`` is secret."""
        if self.is_secret(key) and value is not None:
            return MASK
        return render(value)


def render(value: Any) -> str:
    """A value as one line of YAML-ish text (``null``, ``true``, ``[a, b]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return str(value)
