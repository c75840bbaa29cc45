"""core/safe_text: untrusted text is shown with every control character visible."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from lemlab.core.safe_text import control_chars, visible, visible_line

ATTACK = "\x1b[2J\x1b]0;pwned\x07"


def _xml_ok(text: str) -> bool:
    try:
        ET.fromstring(f"<t>{text.replace('&', '&amp;').replace('<', '&lt;')}</t>")
    except ET.ParseError:
        return False
    return True


def test_escape_sequences_show_as_control_pictures() -> None:
    assert visible("ok" + ATTACK + "done") == "ok␛[2J␛]0;pwned␇done"
    assert visible("demo\x04reply\x1c.") == "demo␄reply␜."
    assert visible("a\x00b\x08c\x7f") == "a␀b␈c␡"


def test_newline_and_tab_kept_in_text_shown_in_lines() -> None:
    assert visible("one\n\ttwo") == "one\n\ttwo"
    assert visible_line("a\nb\x1b[31m") == "a␊b␛[31m"
    assert visible_line("col\tcol") == "col␉col"


def test_carriage_return_cannot_overwrite_a_line() -> None:
    assert visible("dos\r\nline") == "dos\nline"
    assert visible("all good\rHACKED") == "all good␍HACKED"
    assert visible_line("x\r\ny") == "x␍␊y"


def test_c1_and_invisible_format_characters_as_escape_text() -> None:
    assert visible("csi\x9b2J nel\x85") == "csi\\x9b2J nel\\x85"
    # Trojan Source: an override and an isolate that would reorder what is shown.
    assert visible("admin\u202e\u2066x") == "admin\\u202e\\u2066x"
    assert visible("zero\u200bwidth\ufeff") == "zero\\u200bwidth\\ufeff"
    assert visible("tag\U000e0041") == "tag\\U000e0041"
    assert visible("lone \ud800") == "lone \\ud800"


def test_real_text_is_left_alone() -> None:
    text = "Grüße, 世界! 👩\u200d💻 فارسی\u200c \u200fשלום — «ok»\n\tend"
    assert visible(text) is text
    assert visible_line("plain id") == "plain id"


def test_control_chars_lists_what_a_line_would_show() -> None:
    assert control_chars("a\nb\x1b[31m\x1b") == ["␊", "␛"]
    assert control_chars("clean") == []


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_any_text_becomes_terminal_and_xml_safe(text: str) -> None:
    for shown, allowed in ((visible(text), "\n\t"), (visible_line(text), "")):
        bad = [
            c
            for c in shown
            if c not in allowed and (unicodedata.category(c) in ("Cc", "Cs") or c in "\u202e\u2066")
        ]
        assert bad == []
        shown.encode("utf-8")  # no lone surrogate left to crash a writer
        assert _xml_ok(shown)
    assert "\n" not in visible_line(text)
