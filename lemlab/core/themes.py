"""Theme files (TOML) -> plain specs the TUI registers as Textual themes. Headless: no textual here.

A theme file holds: name, dark (bool), primary, and optionally secondary, accent, background,
surface, panel, foreground, warning, error, success (colours as "#rrggbb" or names) and a
[variables] table of extra Textual CSS variables. Shipped files live in the checkout's themes/,
user files in get_paths().themes_dir (same name: the user's wins).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.config import load_config
from lemlab.core.config_edit import set_config_value
from lemlab.core.errors import DataError
from lemlab.core.paths import get_paths, shipped_dirs

DEFAULT_THEME = "lemlab-dark"
COLOUR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "background",
    "surface",
    "panel",
    "foreground",
    "warning",
    "error",
    "success",
)
_COLOUR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|#[0-9a-fA-F]{8}|[a-z]+)$")
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,40}\Z")  # \Z: `$` lets a final "\n" in


@dataclass(frozen=True)
class ThemeSpec:
    name: str
    dark: bool
    colours: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    path: str = ""


def parse_theme(data: dict[str, Any], source: str = "") -> ThemeSpec:
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise DataError(f"{source}: 'name' must be lower-case letters, digits, '-' or '_'")
    if not isinstance(data.get("dark", True), bool):
        raise DataError(f"{source}: 'dark' must be true or false")
    unknown = set(data) - {"name", "dark", "variables", *COLOUR_KEYS}
    if unknown:
        raise DataError(f"{source}: unknown keys {', '.join(sorted(unknown))}")
    colours = {k: data[k] for k in COLOUR_KEYS if k in data}
    if "primary" not in colours:
        raise DataError(f"{source}: 'primary' is required")
    for key, value in colours.items():
        if not isinstance(value, str) or not _COLOUR.match(value):
            raise DataError(f"{source}: {key} = {value!r} is not a colour")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or any(not isinstance(v, str) for v in variables.values()):
        raise DataError(f"{source}: [variables] must map names to strings")
    return ThemeSpec(name, data.get("dark", True), colours, dict(variables), source)


def load_theme_file(path: Path) -> ThemeSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"{path}: {exc}") from exc
    except RecursionError:
        raise DataError(f"{path}: not valid TOML (nested too deeply)") from None
    return parse_theme(data, str(path))


def theme_dirs() -> list[Path]:
    return [*shipped_dirs("themes"), get_paths().themes_dir]


def load_themes(dirs: list[Path] | None = None) -> tuple[list[ThemeSpec], list[str]]:
    """All valid themes (later folders override earlier ones by name) and one line per bad file."""
    by_name: dict[str, ThemeSpec] = {}
    errors: list[str] = []
    for folder in theme_dirs() if dirs is None else dirs:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            try:
                spec = load_theme_file(path)
            except DataError as exc:
                errors.append(str(exc).splitlines()[0])
                continue
            by_name[spec.name] = spec
    return list(by_name.values()), errors


# -- the persisted choice: config.toml's `theme` when core.config can save, else a state file ----
def _state_file() -> Path:
    return get_paths().data_dir / "state.toml"


def load_theme_choice() -> str | None:
    try:
        theme = load_config().theme
        if theme:
            return str(theme)
    except Exception:  # noqa: BLE001 - a broken config is reported elsewhere; fall back quietly
        pass
    try:
        return tomllib.loads(_state_file().read_text()).get("theme")
    except (OSError, ValueError, RecursionError):  # ValueError: TOML or UTF-8 decoding
        return None


def save_theme_choice(name: str) -> None:
    if _save_to_config(name):
        return
    state: dict[str, Any] = {}
    try:
        state = tomllib.loads(_state_file().read_text())
    except (OSError, ValueError, RecursionError):
        pass
    state["theme"] = name
    write_text_atomic(_state_file(), tomli_w.dumps(state))


def _save_to_config(name: str) -> bool:
    """Set `theme` in config.toml in place, comments and layout kept (core/config_edit)."""
    set_config_value("theme", name)
    return True
