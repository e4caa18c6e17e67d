"""``storeedge config-doc``: docs/config-reference.md, generated from the config classes.

Every key of the store manifest, the gateway, the store server and each device app, with its
type, default, unit, allowed range or choices and description, straight from the
``setting(...)`` declarations, so the reference cannot drift from the code
(tests/store/test_setup_docs.py fails when the file is stale).

    storeedge config-doc > docs/config-reference.md
    storeedge config-doc --check docs/config-reference.md     # exit 1 when stale
"""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, NamedTuple

from storeedge.firmware.common.config import spec_of


class Row(NamedTuple):
    """One key of the reference."""

    key: str
    type: str
    default: str
    unit: str
    allowed: str
    doc: str


def _targets() -> list[tuple[str, str, type]]:
    """(title, what runs it, config class) of every documented config."""
    from storeedge.firmware.checkout.config import CheckoutConfig
    from storeedge.firmware.dock_door.config import DoorConfig
    from storeedge.firmware.freezer.config import FreezerConfig
    from storeedge.firmware.gateway.config import GatewayConfig
    from storeedge.manifest import Manifest
    from storeedge.server.config import StoreServerConfig
    return [("Store manifest", "storeedge store plan store.yaml OUTDIR", Manifest),
            ("Gateway", "storeedge gateway --config gateway.yaml", GatewayConfig),
            ("Store server", "storeedge store-server --config store-server.yaml",
             StoreServerConfig),
            ("Checkout lane", "storeedge checkout --config lane.yaml", CheckoutConfig),
            ("Freezer monitor", "storeedge freezer --config freezer.yaml", FreezerConfig),
            ("Dock door", "storeedge door --config door.yaml", DoorConfig)]


def _inner(tp: Any) -> tuple[str, Any]:
    """``("", tp)``, or the container marker and the section inside a list/dict/Optional."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return ("?", rest[0]) if len(rest) == 1 and is_dataclass(rest[0]) else ("", tp)
    if origin is list and is_dataclass(args[0]):
        return "[]", args[0]
    if origin is dict and is_dataclass(args[1]):
        return ".<name>", args[1]
    return "", tp


def rows(cls: type, prefix: str = "") -> list[Row]:
    """Every leaf key of ``cls`` (sections inside lists, maps and optionals expanded)."""
    out: list[Row] = []
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        marker, inner = _inner(hints[f.name])
        if is_dataclass(inner):
            if marker == "?":
                out.append(Row(key, "section or null", "null", "", "", spec_of(f).doc))
            elif marker:
                out.append(Row(key, "list of sections" if marker == "[]" else
                               "map of sections", _fmt(getattr(defaults, f.name)), "", "",
                               spec_of(f).doc))
            out.extend(rows(inner, key + (marker if marker != "?" else "")))
            continue
        out.append(_leaf(key, hints[f.name], getattr(defaults, f.name), spec_of(f)))
    return out


def _leaf(key: str, tp: Any, default: Any, spec) -> Row:
    from storeedge.firmware.common.config import _type_label  # the loader's own names
    allowed = ""
    if spec.choices:
        allowed = " / ".join(str(c) for c in spec.choices if c != "")
    elif spec.min is not None or spec.max is not None:
        lo = "" if spec.min is None else _num(spec.min)
        hi = "" if spec.max is None else _num(spec.max)
        allowed = f"{lo}..{hi}"
    elif spec.pattern:
        allowed = f"`{spec.pattern}`"
    doc = spec.doc + (" (secret: may live in the 0600 secrets file)" if spec.secret else "")
    return Row(key, _type_label(tp), _fmt(default), spec.unit or "", allowed, doc)


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if dataclasses.is_dataclass(value):
        return "(section)"
    if isinstance(value, str):
        return f'"{value}"' if value else '""'
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (list, dict)):
        return repr(value).replace("'", '"') if value else ("[]" if isinstance(value, list)
                                                            else "{}")
    return str(value)


def _num(value: float) -> str:
    """A bound or default as a person writes it (no exponent for whole numbers)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def generate() -> str:
    """The whole of docs/config-reference.md."""
    lines = ["# Config reference", "",
             "Generated by `storeedge config-doc` from the config classes (do not edit; "
             "`tests/store/test_setup_docs.py` fails when it is stale). Every app refuses "
             "an unknown key, a wrong type or a value outside the range with the key and the "
             "line (`--validate-config`). `<name>` stands for a name you choose (a map key); "
             "`[]` for each item of a list. Units: s seconds, ms milliseconds, degC degrees "
             "Celsius. How the pieces fit: [store-setup.md](store-setup.md).", ""]
    for title, runs, cls in _targets():
        lines += [f"## {title}", "", f"`{runs}` (`{cls.__module__}.{cls.__name__}`)", "",
                  "| key | type | default | unit | allowed | what |",
                  "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_cell(c) for c in (f"`{r.key}`", r.type, r.default, r.unit,
                                                        r.allowed, r.doc)) + " |"
                  for r in rows(cls)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the reference, or with ``--check FILE`` exit 1 when FILE is stale."""
    text = generate()
    if argv[:1] == ["--check"] and len(argv) == 2:
        try:
            with open(argv[1], encoding="utf-8") as fh:
                current = fh.read()
        except OSError as exc:
            print(f"storeedge config-doc: cannot read {argv[1]}: {exc.strerror}", file=sys.stderr)
            return 1
        if current != text:
            print(f"storeedge config-doc: {argv[1]} is stale: run storeedge config-doc > "
                  f"{argv[1]}", file=sys.stderr)
            return 1
        print(f"OK: {argv[1]}")
        return 0
    if argv:
        print("usage: storeedge config-doc [--check FILE]", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
