"""Command-line parsing: words, quoting and unambiguous-prefix abbreviations.

Commands are sequences of fixed words followed by arguments (``show config [key]``,
``commit confirmed MINUTES``).  Every fixed word may be shortened to any prefix that is not
shared with another word at the same place: ``sh co`` is ``show config``, ``st`` is ``status``,
``co`` is refused as ambiguous (commit, confirm).  An exact word always wins over a prefix.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Callable

from storeedge.firmware.console.exc import CommandError


@dataclass(frozen=True)
class CommandSpec:
    """One command.

    Attributes:
        words: the fixed words, e.g. ("show", "config").
        args: argument synopsis for help, e.g. "[KEY]".
        help: one-line description (fits 80 columns with the synopsis).
        handler: called as ``handler(ctx, args: list[str])``.
        min_args / max_args: how many arguments are accepted (max None = any).
    """

    words: tuple[str, ...]
    args: str
    help: str
    handler: Callable[..., Any]
    min_args: int = 0
    max_args: int | None = 0

    @property
    def synopsis(self) -> str:
        return " ".join(self.words + ((self.args,) if self.args else ()))


@dataclass(frozen=True)
class Parsed:
    """A matched command and its arguments."""

    spec: CommandSpec
    args: list[str]


def tokenize(line: str) -> list[str]:
    """Split ``line`` like a shell (quotes group words); CommandError on an open quote."""
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as exc:
        raise CommandError(f"cannot read the line: {exc}") from None


def _pick(token: str, choices: list[str], kind: str, where: str = "") -> str:
    if token in choices:
        return token
    hits = sorted({c for c in choices if c.startswith(token)})
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise CommandError(f"unknown {kind} {token!r}{where}; expected one of: "
                           + ", ".join(sorted(set(choices))))
    raise CommandError(f"ambiguous {kind} {token!r}{where}: could be " + ", ".join(hits))


def match(tokens: list[str], table: list[CommandSpec], *, check_args: bool = True) -> Parsed:
    """Find the command ``tokens`` names; raises CommandError with a helpful message.

    With ``check_args`` false the argument count is not checked (for ``help COMMAND``).
    """
    if not tokens:
        raise CommandError("empty command")
    first = _pick(tokens[0].lower(), [s.words[0] for s in table], "command")
    group = [s for s in table if s.words[0] == first]
    depth = 1
    while True:
        longer = [s for s in group if len(s.words) > depth]
        exact = [s for s in group if len(s.words) == depth]
        if longer and len(tokens) > depth:
            try:
                word = _pick(tokens[depth].lower(), [s.words[depth] for s in longer], "word",
                             f" after '{' '.join(longer[0].words[:depth])}'")
            except CommandError:
                if not exact:
                    raise
            else:
                group = [s for s in longer if s.words[depth] == word]
                depth += 1
                continue
        if exact:
            if not check_args:
                return Parsed(exact[0], tokens[depth:])
            return _checked(exact[0], tokens[depth:])
        options = ", ".join(s.words[depth] for s in longer)
        raise CommandError(f"'{' '.join(longer[0].words[:depth])}' needs one of: {options}")


def _checked(spec: CommandSpec, args: list[str]) -> Parsed:
    too_few = len(args) < spec.min_args
    too_many = spec.max_args is not None and len(args) > spec.max_args
    if too_few or too_many:
        raise CommandError(f"usage: {spec.synopsis}")
    return Parsed(spec, args)
