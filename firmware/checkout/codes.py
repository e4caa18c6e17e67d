"""Item keys: one comparable string per item, whatever carried the code.

GS1 codes (EAN/UPC, DataBar, GS1-128...) become ``"01:<GTIN-14>"`` via
:func:`storeedge.native.gs1.normalize`, so a UPC-A scan equals an EAN-13 read of the same
item; price-look-up codes keyed at the POS (4 or 5 digits) become ``"PLU:<digits>"``; other
symbologies keep their text (``"TXT:<text>"``). Content that is not an item (a loyalty QR,
a door credential) gives None when read by the camera.
"""
from __future__ import annotations

import re

from storeedge.native import gs1

_PLU = re.compile(r"^(?:9?[34]\d{3})$")
_GTIN_LEN = (8, 12, 13, 14)
_FORMAT_BY_LEN = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13"}


def item_key(text: str, fmt: str | None) -> str | None:
    """Key of a camera read (``fmt``: zxing-cpp format name) or None if it is not an item."""
    try:
        return "01:" + gs1.normalize(text, fmt).gtin14
    except (gs1.GS1Error, ValueError):
        return None


def pos_key(code: str, fmt: str | None = None) -> str:
    """Key of a POS line's code (``fmt``: format name from the AIM prefix, or None).

    Raises ``ValueError`` when a numeric GTIN-length code has a bad check digit.
    """
    if _PLU.match(code):
        return "PLU:" + code
    if fmt is None and code.isdigit() and len(code) in _GTIN_LEN:
        fmt = _FORMAT_BY_LEN.get(len(code), "EAN-13")
        if len(code) == 14:
            if not gs1.is_valid_gtin(code):
                raise gs1.GS1Error(f"bad GTIN-14 check digit: {code}")
            return "01:" + code
    if fmt is not None:
        try:
            return "01:" + gs1.normalize(code, fmt).gtin14
        except gs1.GS1Error:
            if code.isdigit() and fmt in _FORMAT_BY_LEN.values():
                raise
    return "TXT:" + code
