"""Events: the envelope every hop carries, and a written schema per event type.

Envelope (compact JSON, UTF-8), identical on every hop::

    {"v":1,"dev":"door-1","kind":"dock_door","store":"s0042","boot":"<uuid>","seq":1834,
     "ts":"2026-11-24T01:02:03.456789Z","type":"door.granted","prio":0,"body":{...}}

A device holding an end-to-end key appends ``,"seal":"<64 hex>"`` as the last member
(:mod:`storeedge.seal`): an HMAC over the exact bytes before it, checked by the store server.

``(dev, seq)`` is an event's identity everywhere.  Each event type is a dataclass registered
with :func:`event_type`; :func:`schema_for` turns it into JSON Schema and :func:`validate_body`
checks a received body against it.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable

from storeedge.exc import EventError

ENVELOPE_VERSION = 1
TOPIC_ROOT = "se/v1"
TYPE_PATTERN = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+"
ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"
_TYPE_RE = re.compile(TYPE_PATTERN)
_ID_RE = re.compile(ID_PATTERN)
_SEAL_RE = re.compile(r"[0-9a-f]{64}")
_TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")

# Modules that register event types besides the apps' own (see storeedge.apps): the shared
# service's events and the console's (which runs on every device).
CORE_EVENT_MODULES = (
    "storeedge.core_events",
    "storeedge.firmware.console.events",
)


class Prio(IntEnum):
    """Event priority: lower is more important."""

    SAFETY = 0        # door forced, freezer alarm
    LOSS = 1          # missed scan, ticket switch
    OPERATIONAL = 2   # grants, config commits, state changes
    TELEMETRY = 3     # readings: coalesced under storage pressure


@dataclass(frozen=True)
class EventType:
    """A registered event type."""

    name: str
    prio: Prio
    body: type
    doc: str


REGISTRY: dict[str, EventType] = {}


def doc_field(text: str, unit: str | None = None, **kwargs: Any) -> Any:
    """A documented event-body field: the one way every events module writes one.

    ``text`` becomes the field's JSON Schema ``description`` and ``unit`` (e.g. ``"degC"``,
    ``"s"``, ``"count"``) its ``x-unit``; ``kwargs`` (``default=``, ``default_factory=``) go
    to :func:`dataclasses.field`.
    """
    meta = {"doc": text, "unit": unit} if unit else {"doc": text}
    return dataclasses.field(metadata=meta, **kwargs)


@typing.dataclass_transform(field_specifiers=(dataclasses.field, doc_field))
def event_type(name: str, prio: int):
    """Class decorator: make ``cls`` a dataclass (unless it is one already) and register it
    as the body of event type ``name`` with priority ``prio`` (a :class:`Prio`)."""
    if not _TYPE_RE.fullmatch(name):
        raise ValueError(f"event type {name!r} must look like 'area.what'")

    def register(cls):
        if "__dataclass_fields__" not in vars(cls):      # not itself one (a base may be)
            cls = dataclass(cls)
        known = REGISTRY.get(name)
        if known is not None and known.body.__qualname__ != cls.__qualname__:
            raise ValueError(f"event type {name!r} registered twice ({known.body} and {cls})")
        REGISTRY[name] = EventType(name, Prio(prio), cls, (cls.__doc__ or "").strip())
        cls.EVENT_TYPE = name
        cls.EVENT_PRIO = Prio(prio)
        return cls

    return register


def load_all_event_types() -> dict[str, EventType]:
    """Import the core event modules and every registered app's, and return the registry."""
    from storeedge import apps
    for module in CORE_EVENT_MODULES + apps.event_modules():
        importlib.import_module(module)
    return REGISTRY


def body_to_dict(body: Any) -> dict:
    """A registered dataclass instance (or a plain dict) as a JSON-ready dict."""
    if dataclasses.is_dataclass(body):
        return dataclasses.asdict(body)
    if isinstance(body, dict):
        return body
    raise EventError(f"event body must be a registered dataclass or a dict, got {type(body)}")


# ----------------------------------------------------------------------------- time


def format_ts(epoch: float) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-24T01:02:03.456789Z``."""
    moment = _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> float:
    """Seconds since the epoch from an envelope timestamp."""
    match = _TS_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise EventError(f"timestamp {text!r} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS.ffffffZ)")
    try:
        moment = _dt.datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                              int(text[14:16]), int(text[17:19]), tzinfo=_dt.timezone.utc)
    except ValueError as exc:
        raise EventError(f"timestamp {text!r}: {exc}") from None
    frac = match.group(1)
    return moment.timestamp() + (float("0" + frac) if frac else 0.0)


# ----------------------------------------------------------------------------- envelope


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event as it travels: identity, time, type, priority and body."""

    dev: str
    kind: str
    store: str
    boot: str
    seq: int
    ts: str
    type: str
    prio: int
    body: dict
    v: int = ENVELOPE_VERSION
    seal: str | None = None       # hex HMAC of the bytes before it (not part of to_json)

    @property
    def topic(self) -> str:
        """``se/v1/{store}/{kind}/{dev}/evt/{type}``."""
        return f"{TOPIC_ROOT}/{self.store}/{self.kind}/{self.dev}/evt/{self.type}"

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, keys in envelope order (without the seal: these are the bytes
        a seal covers)."""
        doc = {"v": self.v, "dev": self.dev, "kind": self.kind, "store": self.store,
               "boot": self.boot, "seq": self.seq, "ts": self.ts, "type": self.type,
               "prio": self.prio, "body": self.body}
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str, *, max_bytes: int = 1 << 20) -> "Envelope":
        """Parse and check an envelope; raises :class:`EventError` saying what is wrong.

        A valid envelope is decoded and checked in compiled code (msgspec) when available;
        anything it refuses goes through the pure path below, which says what is wrong (so
        both give the same answer and the same message).  ``STOREEDGE_PURE=1``: pure only.
        """
        if len(raw) > max_bytes:
            raise EventError(f"payload of {len(raw)} bytes exceeds the limit of {max_bytes}")
        if _FAST is not None:
            env = _FAST.decode(raw)
            if env is not None:
                return env
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EventError(f"malformed JSON: {exc}") from None
        except RecursionError:
            raise EventError("nesting too deep for the JSON parser") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> "Envelope":
        """Check an envelope given as a decoded JSON object."""
        if not isinstance(doc, dict):
            raise EventError("envelope must be a JSON object")
        missing = _ENVELOPE_FIELDS.keys() - doc.keys()
        if missing:
            raise EventError(f"envelope lacks {', '.join(sorted(missing))}")
        extra = doc.keys() - _ENVELOPE_FIELDS.keys()
        seal = doc.get("seal")
        if seal is not None or "seal" in extra:
            extra.discard("seal")
            if not (isinstance(seal, str) and _SEAL_RE.fullmatch(seal)):
                raise EventError("envelope.seal: must be 64 lowercase hex digits")
        if extra:
            raise EventError(f"envelope has unknown keys {', '.join(sorted(extra))}")
        for key, check in _ENVELOPE_FIELDS.items():
            problem = check(doc[key])
            if problem:
                raise EventError(f"envelope.{key}: {problem}")
        parse_ts(doc["ts"])
        return cls(dev=doc["dev"], kind=doc["kind"], store=doc["store"], boot=doc["boot"],
                   seq=doc["seq"], ts=doc["ts"], type=doc["type"], prio=doc["prio"],
                   body=doc["body"], v=doc["v"], seal=seal)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _FastEnvelope:
    """The envelope schema as a msgspec Struct: decode + check in one compiled pass."""

    def __init__(self, msgspec: Any):
        from typing import Annotated, Literal, Union

        def text(pattern: str, **kw):
            return Annotated[str, msgspec.Meta(pattern=rf"\A(?:{pattern})\Z", **kw)]

        fields = [("v", Literal[1]), ("dev", text(ID_PATTERN)), ("kind", text(ID_PATTERN)),
                  ("store", text(ID_PATTERN)),
                  ("boot", Annotated[str, msgspec.Meta(min_length=1, max_length=64)]),
                  ("seq", Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]),
                  ("ts", text(_TS_RE.pattern)), ("type", text(TYPE_PATTERN)),
                  ("prio", Annotated[int, msgspec.Meta(ge=0, le=3)]), ("body", dict),
                  ("seal", Union[text(r"[0-9a-f]{64}"), msgspec.UnsetType], msgspec.UNSET)]
        # built with defstruct: this module's annotations are strings (__future__)
        Wire = msgspec.defstruct("Wire", fields, forbid_unknown_fields=True)
        self._decoder = msgspec.json.Decoder(Wire)
        self._errors = (msgspec.DecodeError, RecursionError)
        self._unset = msgspec.UNSET

    def decode(self, raw: bytes | str) -> "Envelope | None":
        """The envelope, or None to let the pure path decide (and explain)."""
        try:
            w = self._decoder.decode(raw)
            _dt.datetime.fromisoformat(w.ts[:19])       # calendar check (format is matched)
        except self._errors:
            return None
        except ValueError:
            return None
        return Envelope(w.dev, w.kind, w.store, w.boot, w.seq, w.ts, w.type, w.prio, w.body,
                        w.v, None if w.seal is self._unset else w.seal)


def _fast_envelope() -> _FastEnvelope | None:
    if os.environ.get("STOREEDGE_PURE", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    try:
        import msgspec
    except ImportError:
        return None
    return _FastEnvelope(msgspec)


def _check_id(v: Any) -> str | None:
    return None if isinstance(v, str) and _ID_RE.fullmatch(v) else f"{v!r} is not a valid id"


_ENVELOPE_FIELDS = {
    "v": lambda v: None if v == ENVELOPE_VERSION else f"unsupported version {v!r}",
    "dev": _check_id,
    "kind": _check_id,
    "store": _check_id,
    "boot": lambda v: None if isinstance(v, str) and 0 < len(v) <= 64 else "must be a string",
    "seq": lambda v: None if _is_int(v) and 1 <= v < 2**63 else f"{v!r} is not a positive integer",
    "ts": lambda v: None if isinstance(v, str) else "must be a string",
    "type": lambda v: None if isinstance(v, str) and _TYPE_RE.fullmatch(v) else f"bad type {v!r}",
    "prio": lambda v: None if _is_int(v) and 0 <= v <= 3 else f"{v!r} is not 0..3",
    "body": lambda v: None if isinstance(v, dict) else "must be a JSON object",
}


_FAST = _fast_envelope()


# ----------------------------------------------------------------------------- schema


def schema_for(name: str) -> dict:
    """JSON Schema (2020-12) of event type ``name``'s body."""
    etype = REGISTRY[name]
    schema = _dataclass_schema(etype.body)
    schema["$id"] = f"storeedge:event:{name}"
    schema["title"] = name
    schema["x-prio"] = int(etype.prio)
    return schema


def all_schemas() -> dict:
    """The envelope schema and every registered body schema, as one document."""
    load_all_event_types()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "envelope": ENVELOPE_SCHEMA,
            "events": {name: schema_for(name) for name in sorted(REGISTRY)}}


ENVELOPE_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["v", "dev", "kind", "store", "boot", "seq", "ts", "type", "prio", "body"],
    "properties": {
        "v": {"const": ENVELOPE_VERSION},
        "dev": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
        "kind": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
        "store": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
        "boot": {"type": "string", "maxLength": 64, "description": "process start id (uuid)"},
        "seq": {"type": "integer", "minimum": 1,
                "description": "per device, strictly increasing, persisted"},
        "ts": {"type": "string", "format": "date-time", "description": "event time, UTC"},
        "type": {"type": "string", "pattern": f"^{TYPE_PATTERN}$"},
        "prio": {"type": "integer", "minimum": 0, "maximum": 3,
                 "description": "0 safety, 1 loss, 2 operational, 3 telemetry"},
        "body": {"type": "object"},
        "seal": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                 "description": "HMAC-SHA256 (device's end-to-end key) of the envelope bytes "
                                "before this member, which must be the last"},
    },
}


def _dataclass_schema(cls: type) -> dict:
    hints = typing.get_type_hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        prop = _type_schema(hints[f.name])
        for meta_key in ("doc", "unit"):
            if meta_key in f.metadata:
                prop["description" if meta_key == "doc" else "x-unit"] = f.metadata[meta_key]
        props[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    schema = {"type": "object", "additionalProperties": False, "properties": props,
              "required": required}
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip()
    return schema


def _type_schema(tp: Any) -> dict:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a) for a in args]}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    if dataclasses.is_dataclass(tp):
        return _dataclass_schema(tp)
    simple = {int: "integer", float: "number", bool: "boolean", str: "string",
              type(None): "null"}
    if tp in simple:
        return {"type": simple[tp]}
    if tp is Any:
        return {}
    if tp in (dict, list):
        return {"type": "object" if tp is dict else "array"}
    raise TypeError(f"event body field type {tp!r} has no JSON Schema mapping")


def validate_body(name: str, body: Any) -> None:
    """Check ``body`` against event type ``name``'s schema; raises :class:`EventError`."""
    etype = REGISTRY.get(name)
    if etype is None:
        raise EventError(f"unknown event type {name!r}")
    _checker(etype.body)(body, "body")


Checker = Callable[[Any, str], None]
_CHECKERS: dict[Any, Checker] = {}


def _checker(tp: Any) -> Checker:
    """A compiled validator for type ``tp`` (built once per type: screening is a hot path)."""
    key = tp
    found = _CHECKERS.get(key)
    if found is None:
        found = _CHECKERS[key] = _build_checker(tp)
    return found


def _build_checker(tp: Any) -> Checker:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _union_checker([_checker(a) for a in args], args)
    if origin is list:
        return _list_checker(_checker(args[0]))
    if origin is dict:
        return _dict_checker(_checker(args[1]))
    if dataclasses.is_dataclass(tp):
        return _object_checker(tp)
    return _scalar_checker(tp)


def _union_checker(alts: list[Checker], args: tuple) -> Checker:
    def check(value: Any, path: str) -> None:
        errors = []
        for alt in alts:
            try:
                return alt(value, path)
            except EventError as exc:
                errors.append(str(exc))
        raise EventError(errors[0] if len(errors) == 1 else f"{path}: matches none of {args}")
    return check


def _list_checker(item: Checker) -> Checker:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise EventError(f"{path}: must be an array")
        for i, v in enumerate(value):
            item(v, f"{path}[{i}]")
    return check


def _dict_checker(item: Checker) -> Checker:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise EventError(f"{path}: must be an object")
        for k, v in value.items():
            item(v, f"{path}.{k}")
    return check


def _object_checker(cls: type) -> Checker:
    hints = typing.get_type_hints(cls)
    spec = {}
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        spec[f.name] = (hints[f.name], required)
    children: dict[str, Checker] = {}

    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise EventError(f"{path}: must be an object")
        for key in value:
            if key not in spec:
                raise EventError(f"{path}.{key}: unknown field")
        for fname, (ftype, required) in spec.items():
            if fname not in value:
                if required:
                    raise EventError(f"{path}.{fname}: required field missing")
                continue
            child = children.get(fname)
            if child is None:
                child = children[fname] = _checker(ftype)
            child(value[fname], f"{path}.{fname}")
    return check


_SCALARS = {
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    bool: lambda v: isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    type(None): lambda v: v is None,
    dict: lambda v: isinstance(v, dict),
    list: lambda v: isinstance(v, list),
    Any: lambda v: True,
}


def _scalar_checker(tp: Any) -> Checker:
    ok = _SCALARS.get(tp)
    if ok is None:
        raise EventError(f"unsupported schema type {tp!r}")
    tname = getattr(tp, "__name__", str(tp))

    def check(value: Any, path: str) -> None:
        if not ok(value):
            raise EventError(f"{path}: {value!r} is not a {tname}")
    return check
