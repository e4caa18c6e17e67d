"""Form fields checked one by one, each failure one clear line naming the field.

Text fields refuse control characters and HTML markup (``<``, ``>``); SQL-looking text is
stored literally (every query is parameterised) and shown escaped.
"""
from __future__ import annotations

import datetime as _dt
import re

from storeedge.server.web.exc import FormError

_BAD = re.compile(r"[\x00-\x08\x0b-\x1f\x7f<>]")


def text(form, name: str, max_len: int, *, required: bool = True,
         pattern: re.Pattern | None = None, hint: str = "") -> str:
    """The stripped value of ``name`` (at most ``max_len`` characters)."""
    value = form.get(name)
    if value is None or not isinstance(value, str):
        value = ""
    value = value.strip()
    if not value:
        if required:
            raise FormError(f"{name}: required")
        return ""
    if len(value) > max_len:
        raise FormError(f"{name}: at most {max_len} characters (got {len(value)})")
    if _BAD.search(value):
        raise FormError(f"{name}: control characters and < > are not allowed")
    if pattern is not None and not pattern.fullmatch(value):
        raise FormError(f"{name}: {hint or 'not in the expected format'}")
    return value


def choice(form, name: str, options) -> str:
    value = form.get(name)
    if value not in options:
        raise FormError(f"{name}: must be one of {', '.join(options)}")
    return value


def when(form, name: str) -> int:
    """A ``YYYY-MM-DDTHH:MM`` (UTC, from ``datetime-local``) field as epoch seconds."""
    value = text(form, name, 20)
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            moment = _dt.datetime.strptime(value, fmt)
            return int(moment.replace(tzinfo=_dt.timezone.utc).timestamp())
        except ValueError:
            continue
    raise FormError(f"{name}: expected a date and time like 2026-12-24T06:00")


def integer(form, name: str, lo: int, hi: int) -> int:
    try:
        value = int(str(form.get(name, "")).strip())
    except ValueError:
        raise FormError(f"{name}: a whole number from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise FormError(f"{name}: a whole number from {lo} to {hi}")
    return value
