"""User settings: `config.toml` under get_paths().config_dir (LEMLAB_HOME relocates it).

One flat table of typed settings plus two sub-tables, `[keymap]` and `[endpoints.<name>]`.
Unknown keys are rejected with a "did you mean" hint, bad values with the key and what it takes,
malformed TOML with the file and line: always one line, raised as DataError.

API keys are never stored here: an endpoint names the environment variable holding its key
(`api_key_env`); a literal `api_key` is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import DataError, LemlabError
from lemlab.core.paths import get_paths
from lemlab.core.remote.endpoints import endpoints_from_config


def _doc(text: str, **kw: Any) -> Any:
    """A dataclass field with its documentation attached (shown by describe_settings())."""
    return field(metadata={"doc": text}, **kw)


@dataclass
class Config:
    """Everything config.toml can set. Paths are kept as written; expand them with paths_of()."""

    model_dirs: list[str] = _doc(
        "folders scanned (recursively, a few levels) for MLX models and adapters, "
        "besides the Hugging Face cache",
        default_factory=list,
    )
    adapter_dirs: list[str] = _doc(
        "extra folders scanned for LoRA adapter folders (those holding adapter_config.json)",
        default_factory=list,
    )
    probe_dirs: list[str] = _doc(
        "extra folders of probe batteries (JSON arrays), listed beside the shipped ones",
        default_factory=list,
    )
    kernels_dir: str | None = _doc(
        "folder of kernel (system prompt) files; unset = the data folder's kernels/", default=None
    )
    sessions_dir: str | None = _doc(
        "where sessions are saved; unset = the data folder's sessions/ (see `lemlab sessions`)",
        default=None,
    )
    scan_hf_cache: bool = _doc(
        "also list models in the Hugging Face cache (HF_HUB_CACHE / HF_HOME honoured)",
        default=True,
    )
    theme: str | None = _doc("theme name for the TUI; unset = the built-in default", default=None)
    default_scorer: str = _doc("scorer used when none is named: v2 (current) or v1", default="v2")
    max_tokens: int = _doc("longest reply, in tokens (the published runs used 1024)", default=1024)
    temperature: float = _doc("sampling temperature; 0 = greedy decoding", default=0.0)
    top_p: float = _doc(
        "nucleus sampling: keep tokens up to this cumulative probability", default=1.0
    )
    seed: int | None = _doc("random seed for sampling; unset = a fresh seed each run", default=None)
    keymap: dict[str, str] = _doc(
        'binding id -> keys (comma-separated), e.g. quit = "ctrl+q,f10"; passed to the TUI\'s '
        "App.set_keymap",
        default_factory=dict,
    )
    endpoints: dict[str, dict[str, Any]] = _doc(
        "OpenAI-compatible servers: [endpoints.NAME] with url, model, api_key_env (the NAME of "
        "an environment variable; keys themselves are never stored)",
        default_factory=dict,
    )

    def paths_of(self, name: str) -> list[Path]:
        """A list-of-folders setting as expanded Paths (`~` and environment variables)."""
        return [_expand(p) for p in getattr(self, name)]

    @property
    def resolved_kernels_dir(self) -> Path:
        return _expand(self.kernels_dir) if self.kernels_dir else get_paths().kernels_dir

    @property
    def resolved_sessions_dir(self) -> Path:
        return _expand(self.sessions_dir) if self.sessions_dir else get_paths().sessions_dir


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Config)}


def _expand(p: str) -> Path:
    return Path(os.path.expandvars(p)).expanduser()


def default_config() -> Config:
    return Config()


def describe_settings() -> list[tuple[str, str]]:
    """(key, documentation) for every setting, in file order: for help screens and templates."""
    return [(name, f.metadata["doc"]) for name, f in FIELDS.items()]


# --- loading ---------------------------------------------------------------------------------


def load_config(path: str | Path | None = None) -> Config:
    """Settings from config.toml (default location when path is None); defaults if it is absent."""
    p = Path(path) if path is not None else get_paths().config_file
    try:
        text = p.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not a setting
    except FileNotFoundError:
        return default_config()
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except OSError as exc:
        raise DataError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise DataError(f"{p}: malformed TOML (nested too deeply)") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(
            f"{p}:{_toml_line(exc, text)}: malformed TOML ({_toml_reason(exc)})"
        ) from None
    return config_from_dict(data, source=str(p))


def _toml_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    m = re.search(r"at line (\d+)", str(exc))
    return int(m.group(1)) if m else max(1, text.count("\n") + 1)  # "at end of document"


def _toml_reason(exc: tomllib.TOMLDecodeError) -> str:
    return re.sub(r"\s*\(at [^)]*\)$", "", str(exc))


def config_from_dict(data: Mapping[str, Any], source: str = "config") -> Config:
    """Validate a parsed table into a Config; DataError (one line, prefixed by source) if wrong."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in FIELDS:
            raise DataError(f"{source}: unknown setting {key!r}{_hint(key, FIELDS)}")
        values[key] = _CHECKS[key](value, f"{source}: {key}")
    return Config(**values)


def _hint(key: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _str_list(v: Any, where: str) -> list[str]:
    if isinstance(v, str):
        v = [v]  # a single folder written without brackets
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise DataError(f'{where} must be a list of folder paths, e.g. ["~/models"]')
    return list(v)


def _opt_path(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v:
        raise DataError(f"{where} must be a folder path (a non-empty string)")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise DataError(f"{where} must be true or false")
    return v


def _name(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise DataError(f"{where} must be a non-empty string")
    return v.strip()


def _scorer(v: Any, where: str) -> str:
    from lemlab.core.scoring import SCORERS  # the scorer registry is the one list of valid ids

    name = _name(v, where).lower()
    if name not in SCORERS:
        raise DataError(f"{where} must be one of {', '.join(SCORERS)} (got {v!r})")
    return name


def _number(low: float, high: float | None, integer: bool = False) -> Any:
    def check(v: Any, where: str) -> Any:
        ok_type = isinstance(v, int) if integer else isinstance(v, int | float)
        # `not low <= v` also catches NaN (TOML `nan`), which compares false with everything.
        in_range = ok_type and low <= v and (v <= high if high is not None else v < math.inf)
        if isinstance(v, bool) or not in_range:
            kind = "a whole number" if integer else "a number"
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise DataError(f"{where} must be {kind} {bound} (got {v!r})")
        return int(v) if integer else float(v)

    return check


def _keymap(v: Any, where: str) -> dict[str, str]:
    if not isinstance(v, dict):
        raise DataError(f'{where} must be a table of binding id = "keys"')
    out: dict[str, str] = {}
    for binding, keys in v.items():
        if isinstance(keys, list) and keys and all(isinstance(k, str) and k for k in keys):
            keys = ",".join(keys)
        if not isinstance(keys, str) or not keys.strip():
            raise DataError(f'{where}.{binding} must be keys such as "ctrl+q" or "ctrl+q,f10"')
        out[str(binding)] = keys.replace(" ", "")
    return out


def _endpoints(v: Any, where: str) -> dict[str, dict[str, Any]]:
    """Checked by the endpoint module itself, so the two never disagree on what is valid."""
    if not isinstance(v, dict):
        raise DataError(f"{where} must be tables of [endpoints.NAME]")
    source = where.rsplit(": ", 1)[0]
    try:
        endpoints_from_config(v)
    except LemlabError as exc:
        raise DataError(f"{source}: {str(exc).removeprefix('config: ')}") from None
    return {name: dict(entry) for name, entry in v.items()}


_CHECKS: dict[str, Any] = {
    "model_dirs": _str_list,
    "adapter_dirs": _str_list,
    "probe_dirs": _str_list,
    "kernels_dir": _opt_path,
    "sessions_dir": _opt_path,
    "scan_hf_cache": _bool,
    "theme": _name,
    "default_scorer": _scorer,
    "max_tokens": _number(1, 10**9, integer=True),
    "temperature": _number(0.0, 5.0),
    "top_p": _number(0.0, 1.0),
    "seed": _number(0, 2**32 - 1, integer=True),
    "keymap": _keymap,
    "endpoints": _endpoints,
}
assert set(_CHECKS) == set(FIELDS), "every setting needs a check"


# --- saving ----------------------------------------------------------------------------------


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Only the settings that differ from the defaults (TOML has no null; a default left out
    keeps following future defaults)."""
    base = default_config()
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(cfg, name)
        if value is not None and value != getattr(base, name):
            out[name] = value
    return out


def save_config(cfg: Config, path: str | Path | None = None) -> Path:
    """Validate, then write atomically. Comments in a hand-edited file are not preserved."""
    p = Path(path) if path is not None else get_paths().config_file
    data = config_to_dict(cfg)
    config_from_dict(data, source=str(p))  # never write a file load_config would refuse
    write_text_atomic(p, tomli_w.dumps(data))
    return p
