"""The line editor, fed raw bytes as a terminal (screen/picocom/minicom) sends them."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storeedge.firmware.console.lineedit import LineEditor, LineItem, LineKind


def editor(**kw):
    out = bytearray()
    return LineEditor(out.extend, **kw), out


def lines(items):
    return [i.text for i in items if i.kind is LineKind.LINE]


def test_plain_line_is_echoed_and_returned():
    ed, out = editor()
    assert ed.feed(b"status\r") == [LineItem(LineKind.LINE, "status")]
    assert bytes(out) == b"status\r\n"


def test_crlf_and_lf_end_one_line_each():
    ed, _ = editor()
    assert lines(ed.feed(b"a\r\nb\nc\r\r\n")) == ["a", "b", "c", ""]


def test_backspace_and_del_erase_with_visual_rubout():
    ed, out = editor()
    assert lines(ed.feed(b"shpw\x08\x7fow\r")) == ["show"]
    assert b"\b \b\b \b" in out


def test_backspace_on_empty_line_does_nothing():
    ed, out = editor()
    assert lines(ed.feed(b"\x7f\x7fab\r")) == ["ab"]
    assert b"\b" not in out


def test_ctrl_u_and_ctrl_w():
    ed, _ = editor()
    assert lines(ed.feed(b"garbage\x15set a  b\x17c\r")) == ["set a  c"]


def test_ctrl_c_cancels_the_line():
    ed, out = editor()
    items = ed.feed(b"commit\x03diff\r")
    assert items == [LineItem(LineKind.CANCEL), LineItem(LineKind.LINE, "diff")]
    assert b"^C\r\n" in out


def test_ctrl_d_is_end_of_session():
    ed, _ = editor()
    assert ed.feed(b"half\x04") == [LineItem(LineKind.EOF)]
    assert ed.pending == ""


def test_arrow_keys_and_function_keys_are_swallowed():
    ed, out = editor()
    assert lines(ed.feed(b"st\x1b[A\x1b[1;5Cat\x1bOPus\r")) == ["status"]
    assert b"\x1b" not in out and b"[A" not in out


def test_password_mode_echoes_nothing():
    ed, out = editor()
    ed.reset(echo=False)
    assert lines(ed.feed(b"s3cret\x7f!\r")) == ["s3cre!"]
    assert bytes(out) == b"\r\n"


def test_overlong_line_is_discarded_not_truncated():
    ed, out = editor(max_len=10)
    items = ed.feed(b"set a 12345678901234\r")
    assert items[0].kind is LineKind.REJECTED
    assert "too long" in items[0].text and "10" in items[0].text
    assert out.count(b"\x07") == 1                 # one bell, not one per byte
    assert lines(ed.feed(b"diff\r")) == ["diff"]   # editor usable again


def test_binary_garbage_rejects_the_line():
    ed, _ = editor()
    items = ed.feed(b"se\x00t\xff\xfe x\r")
    assert items[0].kind is LineKind.REJECTED
    assert "3 non-printable" in items[0].text
    assert lines(ed.feed(b"ok\r")) == ["ok"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_yield_only_clean_bounded_lines(data):
    ed, out = editor(max_len=40)
    for item in ed.feed(data):
        if item.kind is LineKind.LINE:
            assert len(item.text) <= 40
            assert all(0x20 <= ord(c) < 0x7F for c in item.text)
    assert all(b < 0x80 for b in out)               # echo is always ASCII
