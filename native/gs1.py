"""GS1 normalisation: turn what a barcode carried into one comparable item key.

Two reads of the same item compare equal whatever symbology carried them::

    >>> normalize("0012345678905", "UPC-A") == normalize("012345678905", "UPC-A")
    True
    >>> normalize("(01)00012345678905(10)LOT7", "DataBar Expanded").gtin14
    '00012345678905'

Covers: GS1 mod-10 check digits; UPC-A (= EAN-13 with a leading 0); UPC-E expanded to UPC-A;
EAN-8; GTIN-14 from element strings (HRI ``(01)...`` or raw with ``<GS>``/``\\x1d`` separators)
carried by GS1 DataBar, GS1-128 and GS1 DataMatrix/QR, with AIs 01, 10, 11, 15, 17, 21, 310n
(net weight, kg) and 392n (price); store-internal variable-measure EAN-13 codes (prefix 02 and
20-29) split into item and price/weight by a configurable :class:`VariableMeasureScheme`.

Pure Python (no kernel, no twin). Errors are :class:`GS1Error` (a ``NativeInputError``, so a
``ValueError``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

from storeedge.native.exc import GS1Error, NativeInputError  # noqa: F401 (GS1Error re-exported)

GS = "\x1d"


@dataclass(frozen=True)
class Measure:
    """A variable quantity carried with an item: ``kind`` is "price" (currency units) or
    "weight" (kg); ``value`` is exact."""

    kind: str
    value: Decimal


@dataclass(frozen=True)
class ItemKey:
    """The identity of an item read from any symbology.

    Equality and hash use ``gtin14`` only (the item), so an EAN-13 read and a DataBar read of
    the same product compare equal; lot, dates, serial and measure ride along for the app.
    For a variable-measure code ``gtin14`` is the item part with the value digits zeroed.
    """

    gtin14: str
    lot: str | None = field(default=None, compare=False)
    expiry: str | None = field(default=None, compare=False)       # YYMMDD (AI 17)
    serial: str | None = field(default=None, compare=False)
    measure: Measure | None = field(default=None, compare=False)
    variable_item: str | None = field(default=None, compare=False)  # store item number
    ais: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class VariableMeasureScheme:
    """Layout of store-internal EAN-13 codes ``PP IIIII VVVVV C`` (prefix, item, value).

    ``kinds`` maps each 2-digit prefix to "price" or "weight"; ``decimals`` is the number of
    decimals of the value (2: cents, 3: grams as kg).  ``item_len + value_len`` must be 10.
    """

    kinds: Mapping[str, str] = field(default_factory=lambda: {
        "02": "price", **{f"2{d}": "price" for d in "012345"},
        **{f"2{d}": "weight" for d in "6789"}})
    item_len: int = 5
    value_len: int = 5
    price_decimals: int = 2
    weight_decimals: int = 3

    def __post_init__(self) -> None:
        if self.item_len + self.value_len != 10 or min(self.item_len, self.value_len) < 1:
            raise GS1Error("item_len + value_len must be 10, each >= 1")
        for prefix, kind in self.kinds.items():
            if kind not in ("price", "weight") or len(prefix) != 2 or not prefix.isdigit():
                raise GS1Error(f"bad variable-measure prefix entry {prefix!r}: {kind!r}")


DEFAULT_SCHEME = VariableMeasureScheme()

# AIs with a predefined fixed data length (digits after the AI), keyed by their first 2 digits.
_FIXED = {"00": 18, "01": 14, "02": 14, "11": 6, "12": 6, "13": 6, "15": 6, "16": 6, "17": 6,
          "20": 2, "31": 6, "32": 6, "33": 6, "34": 6, "35": 6, "36": 6, "41": 13}
# Length of the AI itself, keyed by its first 2 digits (GS1 General Specifications, 3.2).
_AI_LEN = {**dict.fromkeys(("00", "01", "02", "10", "11", "12", "13", "15", "16", "17", "20",
                            "21", "22", "30", "37", "90", "91", "92", "93", "94", "95", "96",
                            "97", "98", "99"), 2),
           **dict.fromkeys(("23", "24", "25", "40", "41", "42", "71"), 3),
           **dict.fromkeys(("31", "32", "33", "34", "35", "36", "39", "43", "70", "72", "80",
                            "81", "82"), 4)}


def check_digit(body: str) -> str:
    """GS1 mod-10 check digit of the digit string ``body`` (without its check digit)."""
    if not body.isdigit():
        raise GS1Error(f"not all digits: {body!r}")
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


def is_valid_gtin(code: str) -> bool:
    """True when ``code`` is 8, 12, 13 or 14 digits with a correct check digit."""
    return (len(code) in (8, 12, 13, 14) and code.isdigit()
            and check_digit(code[:-1]) == code[-1])


def gtin14(code: str) -> str:
    """Left-pad a GTIN-8/12/13/14 to 14 digits after checking its check digit."""
    if not is_valid_gtin(code):
        raise GS1Error(f"invalid GTIN (length or check digit): {code!r}")
    return code.zfill(14)


def expand_upce(code: str) -> str:
    """Expand a UPC-E (6, 7 or 8 digits: [number system] d1..d6 [check]) to a 12-digit UPC-A.

    A 6-digit input is taken as number system 0 without check digit; an 8-digit input's check
    digit must match the expansion.
    """
    if not code.isdigit() or len(code) not in (6, 7, 8):
        raise GS1Error(f"UPC-E needs 6-8 digits, got {code!r}")
    ns, body = ("0", code) if len(code) == 6 else (code[0], code[1:7])
    if ns not in "01":
        raise GS1Error(f"UPC-E number system must be 0 or 1, got {ns}")
    d = body
    last = d[5]
    if last in "012":
        mfr, item = d[0:2] + last + "00", "00" + d[2:5]
    elif last == "3":
        mfr, item = d[0:3] + "00", "000" + d[3:5]
    elif last == "4":
        mfr, item = d[0:4] + "0", "0000" + d[4]
    else:
        mfr, item = d[0:5], "0000" + last
    upca = ns + mfr + item
    upca += check_digit(upca)
    if len(code) == 8 and code[7] != upca[-1]:
        raise GS1Error(f"UPC-E check digit {code[7]} does not match expansion {upca}")
    return upca


def parse_element_string(data: str) -> list[tuple[str, str]]:
    """Split a GS1 element string into ``[(ai, value), ...]``.

    Accepts the HRI form ``(01)09501101530003(10)AB`` or the raw form with FNC1 as ``\\x1d`` or
    ``<GS>`` (a leading symbology identifier such as ``]C1`` / ``]d2`` / ``]e0`` is dropped).
    """
    data = data.replace("<GS>", GS)
    if data[:1] == "]" and len(data) >= 3:
        data = data[3:]
    data = data.lstrip(GS)
    if data.startswith("("):
        return _parse_hri(data)
    return _parse_raw(data)


def _parse_hri(data: str) -> list[tuple[str, str]]:
    out = []
    for part in data.split("(")[1:]:
        ai, sep, value = part.partition(")")
        if not sep or not ai.isdigit() or not 2 <= len(ai) <= 4:
            raise GS1Error(f"malformed HRI element {part!r}")
        out.append(_checked(ai, value))
    if not out:
        raise GS1Error("no application identifiers found")
    return out


def _parse_raw(data: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while i < len(data):
        head = data[i:i + 2]
        ai_len = _AI_LEN.get(head)
        if ai_len is None or not data[i:i + ai_len].isdigit():
            raise GS1Error(f"unknown application identifier at {data[i:i + 4]!r}")
        ai = data[i:i + ai_len]
        i += ai_len
        fixed = _FIXED.get(head)
        if fixed is not None:
            value, i = data[i:i + fixed], i + fixed
        else:
            end = data.find(GS, i)
            end = len(data) if end < 0 else end
            value, i = data[i:end], end
        i += data[i:i + 1] == GS
        out.append(_checked(ai, value))
    if not out:
        raise GS1Error("empty GS1 element string")
    return out


def _checked(ai: str, value: str) -> tuple[str, str]:
    fixed = _FIXED.get(ai[:2])
    if fixed is not None and (len(value) != fixed or not value.isdigit()):
        raise GS1Error(f"AI ({ai}) needs {fixed} digits, got {value!r}")
    if ai in ("01", "02") and not is_valid_gtin(value):
        raise GS1Error(f"AI ({ai}) GTIN check digit wrong: {value}")
    if not value or len(value) > 90:
        raise GS1Error(f"AI ({ai}) has an empty or oversized value")
    return ai, value


def key_from_elements(elements: list[tuple[str, str]]) -> ItemKey:
    """Build an :class:`ItemKey` from parsed AIs; AI (01) is required."""
    ais = dict(elements)
    if "01" not in ais:
        raise GS1Error("element string has no GTIN, AI (01)")
    measure = None
    for ai, value in elements:
        if len(ai) == 4 and ai[:3] == "310":
            measure = Measure("weight", Decimal(value).scaleb(-int(ai[3])))
        elif len(ai) == 4 and ai[:3] == "392":
            measure = Measure("price", Decimal(value).scaleb(-int(ai[3])))
    return ItemKey(ais["01"], lot=ais.get("10"), expiry=ais.get("17"), serial=ais.get("21"),
                   measure=measure, ais=tuple(elements))


def split_variable(ean13: str, scheme: VariableMeasureScheme = DEFAULT_SCHEME) -> ItemKey | None:
    """Split a store-internal EAN-13 into item and measure, or None if its prefix is not one."""
    kind = scheme.kinds.get(ean13[:2])
    if kind is None:
        return None
    item = ean13[2:2 + scheme.item_len]
    value = ean13[2 + scheme.item_len:12]
    decimals = scheme.price_decimals if kind == "price" else scheme.weight_decimals
    base = ean13[:2 + scheme.item_len] + "0" * scheme.value_len
    return ItemKey((base + check_digit(base)).zfill(14),
                   measure=Measure(kind, Decimal(value).scaleb(-decimals)), variable_item=item)


_LINEAR_GTIN = {"EAN13": (13,), "EAN-13": (13,), "UPCA": (12, 13), "UPC-A": (12, 13),
                "EAN8": (8,), "EAN-8": (8,), "ISBN": (13,)}


def normalize(text: str, format: object,
              scheme: VariableMeasureScheme | None = DEFAULT_SCHEME) -> ItemKey:
    """Normalise a decoded ``text`` of symbology ``format`` into an :class:`ItemKey`.

    ``format`` is a name ("EAN-13", "UPC-A", "UPC-E", "EAN-8", "DataBar", "Code 128",
    "Data Matrix", "QR Code"...) or a ``zxingcpp.BarcodeFormat``.  EAN/UPC texts are checked and
    padded to GTIN-14 (UPC-E is expanded first); anything else must be a GS1 element string
    containing AI (01).  ``scheme=None`` disables the variable-measure split.
    Raises :class:`GS1Error` for bad check digits, lengths or non-GS1 content.
    """
    if not isinstance(text, str) or not text:
        raise GS1Error("empty or non-text barcode content")
    name = str(format).replace(" ", "")
    if name in ("UPC-E", "UPCE"):
        digits = text if len(text) != 13 else text[1:]     # zxing reports UPC-E as 0+UPC-A
        text = expand_upce(digits) if len(digits) != 12 else digits
        name = "UPC-A"
    if name in _LINEAR_GTIN:
        if len(text) not in _LINEAR_GTIN[name]:
            raise GS1Error(f"{name} text has the wrong length: {text!r}")
        code = gtin14(text)
        split = split_variable(code[1:], scheme) if scheme and code[0] == "0" else None
        return split if split is not None else ItemKey(code)
    return key_from_elements(parse_element_string(text))
