"""Register the TOML themes (core/themes.py) with Textual and pick the one to start with."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.theme import Theme

from lemlab.core.themes import DEFAULT_THEME, ThemeSpec, load_themes

FALLBACK_THEME = "textual-dark"  # used only if even lemlab-dark cannot be read


def to_textual(spec: ThemeSpec) -> Theme:
    c = spec.colours  # primary always (load_themes requires it); the rest when the file sets them
    return Theme(
        name=spec.name,
        primary=c["primary"],
        secondary=c.get("secondary"),
        accent=c.get("accent"),
        background=c.get("background"),
        surface=c.get("surface"),
        panel=c.get("panel"),
        foreground=c.get("foreground"),
        warning=c.get("warning"),
        error=c.get("error"),
        success=c.get("success"),
        dark=spec.dark,
        variables=dict(spec.variables),
    )


def register_themes(app: App[Any]) -> list[str]:
    """Register every readable theme file; return one line per file that could not be used."""
    specs, errors = load_themes()
    for spec in specs:
        try:
            app.register_theme(to_textual(spec))
        except Exception as exc:  # noqa: BLE001 - a colour Textual rejects: skip that file only
            errors.append(f"{spec.path}: {exc}")
    return errors


def choose_theme(app: App[Any], wanted: list[str | None]) -> tuple[str, str]:
    """(theme to use, '' or a one-line note when a wanted theme is unknown)."""
    available = set(app.available_themes)
    note = ""
    for name in wanted:
        if not name:
            continue
        if name in available:
            return name, note
        note = note or f"theme {name!r} not found; using {DEFAULT_THEME}"
    return (DEFAULT_THEME if DEFAULT_THEME in available else FALLBACK_THEME), note
