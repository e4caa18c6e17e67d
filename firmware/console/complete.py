"""Tab completion and ``?`` help for the console, from the command table and the config schema.

Commands complete from the table (only the commands this device kind has); after ``set``,
``unset`` and ``show config`` the config keys complete (every effective dotted key of the
candidate, plus section prefixes); after ``set KEY`` the values complete where the key has a
fixed set (``choices`` or a boolean).  ``?`` lists the same choices with a one-line help each.
"""
from __future__ import annotations

from typing import Callable

from storeedge.firmware.console.parser import CommandSpec
from storeedge.firmware.console.schema import Schema, _strip_optional, allowed_text
from storeedge.firmware.console.exc import ConsoleError

KEY_COMMANDS = {("set",), ("unset",), ("show", "config")}


class Completer:
    """Completion source for one session.

    Args:
        table: the command table (already filtered to this device kind).
        schema: the device's config schema (types, choices).
        keys: returns the candidate's effective dotted keys (called on each Tab/``?``).
    """

    def __init__(self, table: list[CommandSpec], schema: Schema,
                 keys: Callable[[], list[str]]):
        self.table, self.schema, self.keys = table, schema, keys

    def _split(self, line: str) -> tuple[list[str], str]:
        words = line.split()
        if line.endswith(" ") or not line:
            return words, ""
        return words[:-1], words[-1]

    def _command(self, done: list[str]) -> tuple[list[CommandSpec], int]:
        """Commands whose fixed words match ``done`` (prefixes allowed), and how many matched."""
        group, depth = list(self.table), 0
        for word in done:
            longer = [s for s in group if len(s.words) > depth]
            exact = [s for s in longer if s.words[depth] == word.lower()]
            hits = exact or [s for s in longer if s.words[depth].startswith(word.lower())]
            if not hits or len({s.words[depth] for s in hits}) > 1:
                return [s for s in group if len(s.words) == depth], depth
            group, depth = hits, depth + 1
        return group, depth

    def choices(self, line: str) -> list[tuple[str, str]]:
        """(word, help) pairs that may stand in place of the last word of ``line``."""
        done, partial = self._split(line)
        group, depth = self._command(done)
        if depth == len(done):
            words = {s.words[depth]: s.help for s in group if len(s.words) > depth}
            if words:
                return sorted((w, h) for w, h in words.items() if w.startswith(partial.lower()))
        spec = next((s for s in group if len(s.words) == depth), None)
        if spec is None:
            return []
        return self._args(spec, done[depth:], partial)

    def _args(self, spec: CommandSpec, args: list[str], partial: str) -> list[tuple[str, str]]:
        if spec.words not in KEY_COMMANDS:
            return [(f"<{spec.args}>", spec.help)] if spec.args and not partial else []
        if not args:
            return [(k, "") for k in self._key_words(partial)]
        if spec.words == ("set",) and len(args) == 1:
            values = self._values(args[0])
            if values is None:
                return [("<value>", self._allowed(args[0]))] if not partial else []
            return [(v, "") for v in values if v.startswith(partial)]
        return []

    def _allowed(self, key: str) -> str:
        try:
            return allowed_text(self.schema.resolve(key))
        except ConsoleError:
            return "(unknown key)"

    def _key_words(self, partial: str) -> list[str]:
        """Keys and section prefixes (``freezer.``) one level past ``partial``."""
        out = set()
        for key in self.keys():
            if not key.startswith(partial):
                continue
            dot = key.find(".", len(partial))
            out.add(key if dot < 0 else key[:dot + 1])
        return sorted(out)

    def _values(self, key: str) -> list[str] | None:
        """The fixed set of values ``key`` takes, or None when it is open (a number, text)."""
        try:
            info = self.schema.resolve(key)
        except ConsoleError:
            return None
        if info.spec.choices:
            return [str(c) for c in info.spec.choices]
        if _strip_optional(info.type) is bool:
            return ["false", "true"]
        return None

    def complete(self, line: str) -> list[str]:
        """Words that may replace the partial last word (placeholders left out)."""
        return [w for w, _ in self.choices(line) if not w.startswith("<")]

    def describe(self, line: str) -> list[str]:
        """Help lines for ``?``: each possible next word with its help, or the key's range."""
        pairs = self.choices(line)
        if not pairs:
            return ["  <cr>"]
        width = min(30, max(len(w) for w, _ in pairs) + 2)
        return [f"  {w:<{width}}{h}".rstrip() for w, h in pairs]
