"""Strict, self-documenting configuration.

A config is a tree of *sections*: dataclasses whose fields are declared with :func:`setting`
(default, unit, range, choices, pattern, doc, secret).  :func:`load_config` reads a YAML file
and builds the tree, refusing unknown keys, wrong types and out-of-range values with a
:class:`ConfigError` that names the dotted key and the line::

    freezer.probes.p1.interval_s (line 12): 5 is below the minimum 10 s

A section may define ``check(self)`` for cross-field rules; it raises ``ConfigError(key, reason)``
with a key relative to the section, which the loader turns into the full key and line.

Hostile input is refused before it costs anything: YAML anchors and aliases (``&a``/``*a``:
an alias bomb, a recursive alias), nesting deeper than :data:`MAX_DEPTH` and non-finite
numbers (``.nan``, ``.inf``) are errors naming the key and line.

Secrets (link password, key file paths, ...) may live in a separate YAML file readable only by
its owner: ``secrets_file: PATH`` at the top of the config, or the sidecar
``<config stem>.secrets.yaml`` next to it.  It may hold only settings declared ``secret=True``;
a group/world-readable secrets file is refused.
"""
from __future__ import annotations

import copy
import functools
import dataclasses
import math
import os
import stat
import re
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import yaml

from storeedge.atomic import write_atomic
from storeedge.exc import ConfigError

_META = "storeedge_setting"
MAX_DEPTH = 32            # mapping/list nesting accepted in a config file
SECRETS_KEY = "secrets_file"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when built with it (same
                                                          # events and marks, ~4x faster)


@dataclass(frozen=True)
class SettingSpec:
    """What a setting accepts, for validation and for ``describe``."""

    doc: str = ""
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    pattern: str | None = None
    secret: bool = False


class SettingInfo(NamedTuple):
    """One leaf setting, as listed by :func:`describe` (console help, docs)."""

    key: str
    type: str
    default: Any
    unit: str | None
    min: float | None
    max: float | None
    choices: tuple | None
    doc: str
    secret: bool


class LiveChoices(Sequence):
    """Choices computed when they are read (e.g. the registered app kinds), not at import.

    ``LiveChoices(apps.device_kinds)`` lets an app registered after this module was imported
    be a valid ``device.kind``.
    """

    def __init__(self, source: Callable[[], tuple]):
        self._source = source

    def __getitem__(self, index):
        return self._source()[index]

    def __len__(self) -> int:
        return len(self._source())

    def __repr__(self) -> str:
        return f"LiveChoices({tuple(self)!r})"


def setting(default: Any = None, *, doc: str = "", unit: str | None = None,
            min: float | None = None, max: float | None = None,  # noqa: A002 - mirrors JSON Schema
            choices: tuple | None = None, pattern: str | None = None, secret: bool = False):
    """Declare a section field. ``default`` may be a section class (an all-defaults instance)."""
    if choices is not None and not isinstance(choices, LiveChoices):
        choices = tuple(choices) or None
    spec = SettingSpec(doc, unit, min, max, choices, pattern, secret)
    meta = {_META: spec}
    if isinstance(default, type) and is_dataclass(default):
        return field(default_factory=default, metadata=meta)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def section(cls):
    """Make ``cls`` a config section (a dataclass)."""
    return dataclass(cls)


def spec_of(f: dataclasses.Field) -> SettingSpec:
    """The :class:`SettingSpec` of a section field (an empty one when undeclared)."""
    return f.metadata.get(_META, SettingSpec())


# ----------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike, cls: type) -> Any:
    """Read the YAML file ``path`` and return a validated ``cls`` instance.

    Raises:
        ConfigError: naming the file, the dotted key and the line of the first problem.
    """
    path = os.fspath(path)
    text = _read(path)
    try:
        data, lines = yaml_mapping(text)
    except ConfigError as exc:
        raise exc.located(exc.key, exc.line, path) from None
    _merge_secrets(path, data, cls)
    try:
        return config_from_dict(data, cls, lines)
    except ConfigError as exc:
        raise exc.located(exc.key, exc.line, path) from None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file: {exc.strerror}", path=path) from exc
    except UnicodeDecodeError:
        raise ConfigError("", "not UTF-8 text", path=path) from None


def secrets_path(config_path: str, data: dict) -> str | None:
    """The secrets file of a config: ``secrets_file`` (relative to the config) or the sidecar
    ``<stem>.secrets.yaml`` when it exists; None when there is none."""
    folder = os.path.dirname(os.path.abspath(config_path))
    given = data.get(SECRETS_KEY)
    if given is not None:
        if not isinstance(given, str) or not given:
            raise ConfigError(SECRETS_KEY, "must be a file path", path=config_path)
        return os.path.join(folder, given)
    stem = os.path.splitext(os.path.basename(config_path))[0]
    sidecar = os.path.join(folder, f"{stem}.secrets.yaml")
    return sidecar if os.path.exists(sidecar) else None


def _merge_secrets(config_path: str, data: dict, cls: type) -> None:
    """Read the secrets file (0600) into ``data``; only ``secret=True`` settings allowed."""
    path = secrets_path(config_path, data)
    data.pop(SECRETS_KEY, None)
    if path is None:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(SECRETS_KEY, f"cannot read secrets file {path}: {exc.strerror}",
                          path=config_path) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError("", f"secrets file is readable by group/others (mode "
                              f"{stat.S_IMODE(mode):o}); chmod 600 it", path=path)
    try:
        secrets, lines = yaml_mapping(_read(path))
        allowed = secret_keys(cls)
        for key, value in _leaves(secrets):
            if key not in allowed:
                raise ConfigError(key, "not a secret setting (allowed here: "
                                       f"{', '.join(sorted(allowed)) or 'none'})", lines.get(key))
            _put(data, key, value, lines.get(key))
    except ConfigError as exc:
        raise exc.located(exc.key, exc.line, path) from None


def _leaves(tree: dict, prefix: str = ""):
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            yield from _leaves(v, key)
        else:
            yield key, v


def _put(data: dict, key: str, value: Any, line: int | None) -> None:
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(key, "clashes with a non-mapping in the config", line)
    if leaf in node:
        raise ConfigError(key, "given both in the config and in the secrets file", line)
    node[leaf] = value


def config_from_yaml(text: str, cls: type) -> Any:
    """Validate YAML ``text`` as a ``cls`` config (see :func:`load_config`; no secrets file)."""
    data, lines = yaml_mapping(text)
    data.pop(SECRETS_KEY, None)
    return config_from_dict(data, cls, lines)


def yaml_mapping(text: str) -> tuple[dict, dict[str, int]]:
    """``(data, lines)`` of YAML ``text``: plain data and the line of every dotted key.

    Refuses anchors/aliases, nesting deeper than :data:`MAX_DEPTH`, non-finite numbers and
    a top level that is not a mapping, with a :class:`ConfigError` naming the key and line.
    """
    try:
        _refuse_structure(text)
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError("", f"not valid YAML: {getattr(exc, 'problem', exc)}", line) from None
    if node is None:
        return {}, {}
    lines: dict[str, int] = {}
    data = _node_to_python(node, "", lines)
    if not isinstance(data, dict):
        raise ConfigError("", f"must be a mapping of sections, got {_tname(data)}", 1)
    return data, lines


def yaml_value(text: str) -> Any:
    """One YAML value typed by a person (console ``set``): same refusals as a config file
    (anchors/aliases, deep nesting, ``.nan``/``.inf``)."""
    try:
        _refuse_structure(text)
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return None if node is None else _node_to_python(node, "", {})


class _Frame:
    """One open mapping/sequence while scanning YAML events."""

    def __init__(self, is_map: bool, path: str):
        self.is_map, self.path = is_map, path
        self.key: str | None = None     # mapping: the key whose value comes next
        self.index = 0                  # sequence: the next item's index

    def child(self) -> str:
        if self.is_map:
            return _join(self.path, str(self.key))
        return f"{self.path}[{self.index}]"

    def consumed(self) -> None:
        if self.is_map:
            self.key = None
        else:
            self.index += 1


def _refuse_structure(text: str) -> None:
    """Scan YAML events (no construction): refuse anchors, aliases and deep nesting."""
    stack: list[_Frame] = []
    for ev in yaml.parse(text, Loader=_LOADER):
        top = stack[-1] if stack else None
        is_key = top is not None and top.is_map and top.key is None
        where = top.child() if top is not None and not is_key else (top.path if top else "")
        line = ev.start_mark.line + 1
        if isinstance(ev, yaml.AliasEvent):
            raise ConfigError(where, f"YAML alias *{ev.anchor} is not allowed in a config "
                                     f"(write the value out)", line)
        if getattr(ev, "anchor", None):
            raise ConfigError(where, f"YAML anchor &{ev.anchor} is not allowed in a config "
                                     f"(write the value out)", line)
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise ConfigError(where, f"nested deeper than {MAX_DEPTH} levels", line)
            stack.append(_Frame(isinstance(ev, yaml.MappingStartEvent),
                                where if not is_key else "?"))
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
            _consume(stack)
        elif isinstance(ev, yaml.ScalarEvent):
            if is_key:
                top.key = ev.value
            else:
                _consume(stack)


def _consume(stack: list[_Frame]) -> None:
    if stack:
        top = stack[-1]
        if top.is_map and top.key is None:
            top.key = "?"               # a complex (collection) key: its value comes next
        else:
            top.consumed()


def config_from_dict(data: Any, cls: type, lines: dict[str, int] | None = None) -> Any:
    """Validate a plain mapping as a ``cls`` config; ``lines`` maps dotted keys to lines."""
    return _Builder(lines or {}).section(cls, data, "")


def _node_to_python(node: yaml.Node, key: str, lines: dict[str, int]) -> Any:
    lines.setdefault(key, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for knode, vnode in node.value:
            name = _scalar(knode)
            child = f"{key}.{name}" if key else str(name)
            if name in out:
                raise ConfigError(child, "key given twice", knode.start_mark.line + 1)
            lines[child] = knode.start_mark.line + 1
            out[name] = _node_to_python(vnode, child, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_to_python(v, f"{key}[{i}]", lines) for i, v in enumerate(node.value)]
    value = _scalar(node)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, f"{node.value} is not a finite number", node.start_mark.line + 1)
    return value


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


class _Builder:
    """Walks a mapping against section classes, collecting the line of every key."""

    def __init__(self, lines: dict[str, int]):
        self.lines = lines

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(key, reason, self._line(key))

    def _line(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return None

    def section(self, cls: type, data: Any, path: str) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise self.error(path, f"must be a mapping (section {cls.__name__}), got {_tname(data)}")
        hints = _hints(cls)
        known = {f.name: f for f in fields(cls) if f.init}
        for name in data:
            if name not in known:
                allowed = ", ".join(sorted(known)) or "none"
                raise self.error(_join(path, str(name)), f"unknown key; allowed here: {allowed}")
        values = {}
        for name, f in known.items():
            if name in data:
                values[name] = self.value(hints[name], data[name], _join(path, name), spec_of(f))
        obj = cls(**values)
        self._check(obj, path)
        return obj

    def _check(self, obj: Any, path: str) -> None:
        check = getattr(obj, "check", None)
        if check is None:
            return
        try:
            check()
        except ConfigError as exc:
            key = _join(path, exc.key)
            raise ConfigError(key, exc.reason, self._line(key)) from None

    def value(self, tp: Any, value: Any, key: str, spec: SettingSpec) -> Any:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.value(inner[0], value, key, spec)
        if origin is list:
            if not isinstance(value, list):
                raise self.error(key, f"must be a list, got {_tname(value)}")
            return [self.value(args[0], v, f"{key}[{i}]", spec) for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                raise self.error(key, f"must be a mapping, got {_tname(value)}")
            return {str(k): self.value(args[1], v, f"{key}.{k}", spec) for k, v in value.items()}
        if is_dataclass(tp):
            return self.section(tp, value, key)
        return self.leaf(tp, value, key, spec)

    def leaf(self, tp: Any, value: Any, key: str, spec: SettingSpec) -> Any:
        value = self._typed(tp, value, key)
        unit = f" {spec.unit}" if spec.unit else ""
        if spec.min is not None and value < spec.min:
            raise self.error(key, f"{value} is below the minimum {spec.min:g}{unit}"
                                  + _range(spec))
        if spec.max is not None and value > spec.max:
            raise self.error(key, f"{value} is above the maximum {spec.max:g}{unit}"
                                  + _range(spec))
        if spec.choices is not None and value not in spec.choices:
            allowed = ", ".join(str(c) for c in spec.choices)
            raise self.error(key, f"{value!r} is not one of: {allowed}")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            raise self.error(key, f"{value!r} does not match the pattern {spec.pattern}")
        return value

    def _typed(self, tp: Any, value: Any, key: str) -> Any:
        if tp is bool:
            if isinstance(value, bool):
                return value
        elif tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if not math.isfinite(value):
                    raise self.error(key, f"{value} is not a finite number")
                return float(value)
        elif tp is str:
            if isinstance(value, str):
                return value
        elif tp is Any:
            return value
        hint = ""
        if tp is str and isinstance(value, (int, float, bool)):
            hint = " (YAML read it as a number or boolean: put it in quotes, e.g. \"18:00\")"
        raise self.error(key, f"must be {_tname_type(tp)}, got {_tname(value)} {value!r}{hint}")


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict:
    """``typing.get_type_hints`` of a section class (cached: a manifest has thousands)."""
    return typing.get_type_hints(cls)


def _range(spec: SettingSpec) -> str:
    if spec.min is not None and spec.max is not None:
        unit = f" {spec.unit}" if spec.unit else ""
        return f" (allowed {spec.min:g}..{spec.max:g}{unit})"
    return ""


def _join(path: str, name: str) -> str:
    if not name:
        return path
    return f"{path}.{name}" if path else name


def _tname(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value),
                                                                           type(value).__name__)


def _tname_type(tp: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


# ----------------------------------------------------------------------------- output


def config_to_dict(obj: Any) -> dict:
    """The config as plain data (what :func:`config_from_dict` accepts back)."""
    return dataclasses.asdict(obj)


def describe(cls: type, prefix: str = "") -> list[SettingInfo]:
    """Every leaf setting of ``cls`` with its type, default, unit, range and doc."""
    out: list[SettingInfo] = []
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in fields(cls):
        tp, key = hints[f.name], _join(prefix, f.name)
        if is_dataclass(tp):
            out.extend(describe(tp, key))
            continue
        spec = spec_of(f)
        out.append(SettingInfo(key, _type_label(tp), getattr(defaults, f.name), spec.unit,
                               spec.min, spec.max, spec.choices, spec.doc, spec.secret))
    return out


def _type_label(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_label(a) for a in args).replace("NoneType", "null")
    if origin is list:
        return f"list of {_type_label(args[0])}"
    if origin is dict:
        return f"map of {_type_label(args[1])}"
    return getattr(tp, "__name__", str(tp))


def secret_keys(cls: type, prefix: str = "") -> set[str]:
    """Dotted keys declared ``secret=True`` (masked in diffs, logs and events)."""
    return {info.key for info in describe(cls, prefix) if info.secret}


def write_config_atomic(path: str | os.PathLike, mapping: dict) -> None:
    """Write ``mapping`` as YAML to ``path`` atomically: temp file, fsync, rename, fsync dir.

    A power cut at any point leaves either the old file or the new one, never a mix.
    """
    text = yaml.dump(mapping, Dumper=NoAliasDumper, sort_keys=False, default_flow_style=False)
    write_atomic(path, text.encode("utf-8"))


class NoAliasDumper(yaml.SafeDumper):
    """Writes a value shared by two keys out twice (the loader refuses anchors/aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
