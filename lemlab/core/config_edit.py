"""Changing one setting in config.toml the way a person would: in place, with the file's
comments, order and layout kept (tomlkit), instead of rewriting it from the parsed values.
Used by the TUI's theme switch; the result is validated as load_config would read it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions

from lemlab.core.atomic import write_text_atomic
from lemlab.core.config import config_from_dict
from lemlab.core.errors import DataError
from lemlab.core.paths import get_paths


def set_config_value(key: str, value: Any, path: Path | None = None) -> Path:
    """Set top-level `key`; a missing file is created with just that line. Raises DataError
    (the file left as it was) when the edited file would not load, OSError when it can't be
    read or written."""
    p = path or get_paths().config_file
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        doc = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise DataError(f"{p}: not valid TOML ({exc}); left as it was") from None
    if key in doc:
        doc[key] = value  # tomlkit keeps the line's comment and place
        edited = tomlkit.dumps(doc)
    else:
        edited = _insert_top_level(text, tomlkit.dumps({key: value}))
    config_from_dict(tomllib.loads(edited), source=str(p))  # never write what load_config refuses
    write_text_atomic(p, edited)
    return p


def _insert_top_level(text: str, line: str) -> str:
    """Put a new top-level `key = value` line after the file's last top-level setting: before
    the first [table] and the comments and blank lines that lead into it (they are that table's),
    where tomlkit alone would put it under them."""
    lines = text.splitlines(keepends=True)
    first_table = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")), len(lines))
    at = first_table
    while at > 0 and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
        at -= 1
    if at == 0 and first_table == len(lines):
        at = len(lines)  # only comments (or nothing): add at the end
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, line)
    return "".join(lines)
