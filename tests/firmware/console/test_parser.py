"""Command matching: abbreviations, ambiguity, argument counts, quoting."""
from __future__ import annotations

import pytest

from storeedge.firmware.console.commands import build_table
from storeedge.firmware.console.exc import CommandError
from storeedge.firmware.console.parser import match, tokenize

TABLE = build_table(lambda ctx, args: None)


def parse(line):
    p = match(tokenize(line), TABLE)
    return " ".join(p.spec.words), p.args


@pytest.mark.parametrize("line,words,args", [
    ("status", "status", []),
    ("st", "status", []),
    ("sh co", "show config", []),
    ("sh co link.url", "show config", ["link.url"]),
    ("SHOW CONFIG", "show config", []),
    ("se a.b 'two words'", "set", ["a.b", "two words"]),
    ("commit", "commit", []),
    ("comm conf 5", "commit confirmed", ["5"]),
    ("con", "confirm", []),
    ("rol 2", "rollback", ["2"]),
    ("t rel", "test relay", []),
    ("t sc", "test scanner", []),
    ("res l", "reset lockout", []),
    ("ev 5 console.", "events", ["5", "console."]),
    ("ack high-temp door left open", "ack", ["high-temp", "door", "left", "open"]),
])
def test_commands_and_abbreviations(line, words, args):
    assert parse(line) == (words, args)


@pytest.mark.parametrize("line,message", [
    ("co", "ambiguous command 'co': could be commit, confirm"),
    ("s", "ambiguous command 's': could be set, show, status"),
    ("frobnicate", "unknown command 'frobnicate'"),
    ("show", "'show' needs one of: config"),
    ("show cfg", "unknown word 'cfg' after 'show'; expected one of: config"),
    ("test", "'test' needs one of: relay, sensors, camera, scanner"),
    ("test s", "ambiguous word 's' after 'test': could be scanner, sensors"),
    ("set onlykey", "usage: set KEY VALUE"),
    ("commit now", "usage: commit"),
    ("commit confirmed", "usage: commit confirmed MINUTES"),
    ("unset a b", "usage: unset KEY"),
    ("set a 'open quote", "cannot read the line: No closing quotation"),
])
def test_bad_lines_are_explained(line, message):
    with pytest.raises(CommandError) as err:
        parse(line)
    assert message in str(err.value)


def test_exact_word_beats_prefix():
    # "commit" is exact even though "commit confirmed" shares it
    assert parse("commit")[0] == "commit"
