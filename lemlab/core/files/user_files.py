"""Reading files the user wrote (kernels, batteries, curricula, pipelines, training configs) with
one-line errors that name the file: raw bytes, UTF-8 text, TOML documents, unknown keys."""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lemlab.core.errors import DataError, LemlabError

MAX_TOML_BYTES = 16 << 20  # a plan or config, never data: anything larger is a wrong file
# Settings that mean the same in every plan file, checked before any model loads (the same
# ranges as the command-line flags of those names).
VALUE_RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 2**32 - 1),
    "split_seed": (0, 2**32 - 1),
    "rephrase_seed": (0, 2**32 - 1),
    "max_tokens": (1, 10**9),
    "samples": (1, 100_000),
    "temperature": (0, 100),
    "top_p": (0, 1),
}


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def read_file_bytes(path: Path, where: str, kind: str) -> bytes:
    """The file's bytes. `where` starts every message (e.g. "kernel k.txt"); `kind` names what a
    folder given by mistake should have been (e.g. "battery file")."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise LemlabError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise LemlabError(f"{where}: is a folder, not a {kind}") from None
    except OSError as exc:
        raise LemlabError(f"{where}: cannot read ({exc.strerror or exc})") from None


def decode_utf8(data: bytes, where: str, encoding: str = "utf-8") -> str:
    """Text of UTF-8 bytes (`utf-8-sig` drops a byte-order mark), or DataError naming the byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 text (bad byte at offset {exc.start})") from None


def load_toml_file(path: Path, kind: str) -> dict[str, Any]:
    """A TOML document; `kind` names the file in errors ("pipeline", "curriculum", "config").
    A byte-order mark (Windows editors write one) is dropped; other non-UTF-8 bytes are errors."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        raise LemlabError(f"{kind} file not found: {path}") from None
    except IsADirectoryError:
        raise LemlabError(f"{path} is a folder, not a {kind} TOML file") from None
    except OSError as exc:
        raise LemlabError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_TOML_BYTES:
        raise DataError(f"{path}: larger than {MAX_TOML_BYTES >> 20} MB; not a {kind} file")
    return parse_toml(decode_utf8(data, str(path), "utf-8-sig"), str(path))


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """tomllib.loads with one-line errors; deep nesting (RecursionError) is an error too."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:
        raise DataError(f"{where}: not valid TOML (nested too deeply)") from None


def read_toml_or_empty(path: Path) -> dict[str, Any]:
    """A state file this tool wrote; {} when it is missing or unreadable (nothing recorded yet)."""
    try:
        with open(path, "rb") as fh:
            return tomllib.loads(fh.read().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return {}


def reject_unknown(table: Mapping[str, Any], known: Iterable[str], where: str, what: str) -> None:
    """Unknown keys are errors with a "did you mean" hint (a typo would silently do nothing)."""
    names = list(known)
    for key in table:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise LemlabError(f"{where}: unknown {what} {key!r}{hint}")


def check_types(values: Mapping[str, Any], types: Mapping[str, type], where: str) -> dict[str, Any]:
    """TOML values of the expected types (`types` names every key); ints are accepted where a
    float is wanted (learning_rate = 1)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        want = types[key]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not want:
            raise LemlabError(
                f"{where}: {key} must be {want.__name__}, got {type(value).__name__} "
                f"{_clip(repr(value))}"
            )
        if (
            want is float and isinstance(value, float) and not math.isfinite(value)
        ):  # TOML has nan and inf literals
            raise LemlabError(f"{where}: {key} must be a finite number, got {value!r}")
        if key in VALUE_RANGES and want in (int, float) and isinstance(value, int | float):
            low, high = VALUE_RANGES[key]
            if not low <= value:
                raise LemlabError(f"{where}: {key} must be at least {low}, got {value!r}")
            if not value <= high:
                raise LemlabError(f"{where}: {key} must be at most {high}, got {value!r}")
        out[key] = value
    return out
