"""Make untrusted text (from a model, a server or a file) safe to put on a terminal.

A reply can hold ESC sequences that clear the screen, retitle the window or forge output, and
characters that are invalid in XML (the TUI's SVG screenshot) or reorder what is shown. Such
text is data: every display path passes it through `visible` (multi-line text) or
`visible_line` (ids, names, progress and error lines), which swap each such character for a
visible stand-in. Stored data (A/B files, exports written with --out) keeps the exact text.

The mapping (one table; a regular expression finds the characters to replace, which measured
about 9x faster than `str.translate` on non-ASCII text and is a single scan when there are none):

- C0 controls U+0000-U+001F and DEL U+007F: the Unicode control pictures, one cell wide, so
  table columns stay aligned: ESC -> "␛", BEL -> "␇", U+0004 -> "␄", DEL -> "␡". `visible`
  keeps newline and tab, and reads CR LF as a newline (a lone CR, which would let a line
  overwrite itself, shows as "␍"). `visible_line` shows newline and tab too ("␊", "␉").
- C1 controls U+0080-U+009F (U+009B is a one-byte CSI on some terminals): Python-style escape
  text, "\\x9b" (no pictures exist for them).
- Characters that are invisible yet change what the reader sees, or break the file formats a
  screen is saved to, as escape text ("\\u202e"): bidi embeddings, overrides and isolates
  (U+202A-U+202E, U+2066-U+2069: the "Trojan Source" reordering), zero-width space U+200B,
  word joiner and invisible operators U+2060-U+2064, deprecated format controls
  U+206A-U+206F, U+2028/U+2029 (line breaks some programs honour and others do not), BOM
  U+FEFF, Mongolian vowel separator U+180E, interlinear annotation U+FFF9-U+FFFB,
  noncharacters U+FFFE/U+FFFF, tag characters U+E0000-U+E007F (hidden "ASCII smuggling"
  text), and lone surrogates (JSON can carry them; no encoder can write them).

Kept as they are, because real text needs them: newline and tab (in `visible`), zero-width
joiner and non-joiner U+200C/U+200D (emoji sequences, Indic and Persian scripts), the
direction marks U+200E/U+200F/U+061C (they cannot reorder text), soft hyphen, and everything
printable. The stand-ins are themselves ordinary characters, so a literal "␛" in the text
looks the same as a replaced ESC: this is for showing, not for round trips.
"""

from __future__ import annotations

import re

# Code points shown as escape text; C0 and DEL get pictures below.
_ESCAPED_RANGES = (
    (0x80, 0x9F),
    (0x180E, 0x180E),
    (0x200B, 0x200B),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xD800, 0xDFFF),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xFFFE, 0xFFFF),
    (0xE0000, 0xE007F),
)


def _escape(cp: int) -> str:
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def _char_class(ranges: tuple[tuple[int, int], ...]) -> re.Pattern[str]:
    # Finds the first character to replace; text without one is returned as it is.
    return re.compile("[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges) + "]")


LINE_TABLE: dict[int, str] = {cp: chr(0x2400 + cp) for cp in range(0x20)}  # ␀ .. ␟
LINE_TABLE[0x7F] = "\u2421"  # ␡
for _lo, _hi in _ESCAPED_RANGES:
    LINE_TABLE.update({cp: _escape(cp) for cp in range(_lo, _hi + 1)})
TEXT_TABLE = {k: v for k, v in LINE_TABLE.items() if k not in (0x09, 0x0A)}
_UNSAFE_LINE = _char_class(((0x00, 0x1F), (0x7F, 0x7F), *_ESCAPED_RANGES))
_UNSAFE_TEXT = _char_class(((0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x7F), *_ESCAPED_RANGES))


def _line_sub(m: re.Match[str]) -> str:
    return LINE_TABLE[ord(m.group())]


def _text_sub(m: re.Match[str]) -> str:
    return TEXT_TABLE[ord(m.group())]


def visible(text: object) -> str:
    """Multi-line untrusted text, safe to show: newlines and tabs kept, other controls visible."""
    text = text if isinstance(text, str) else str(text)
    if not _UNSAFE_TEXT.search(text):
        return text
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return _UNSAFE_TEXT.sub(_text_sub, text)


def visible_line(text: object) -> str:
    """One line of untrusted text (an id, a name, a progress or error line): every control
    shown visibly, newlines and tabs included."""
    text = text if isinstance(text, str) else str(text)
    return _UNSAFE_LINE.sub(_line_sub, text)


def control_chars(text: str) -> list[str]:
    """The distinct characters `visible_line` would replace, as their visible forms."""
    return list(dict.fromkeys(LINE_TABLE[ord(c)] for c in _UNSAFE_LINE.findall(text)))


def _json_sub(m: re.Match[str]) -> str:
    cp = ord(m.group())
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    cp -= 0x10000  # astral (tag characters): a UTF-16 surrogate pair, as JSON spells them
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"


def visible_json(text: str) -> str:
    """JSON text for a terminal: the same characters, written as JSON escapes ("\\u001b"), so
    the output stays valid JSON holding exactly the same data. Newlines and tabs between
    tokens are layout; inside strings json.dumps has escaped them already."""
    return _UNSAFE_TEXT.sub(_json_sub, text)
