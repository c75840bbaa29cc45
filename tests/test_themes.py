"""Theme files: the shipped ones parse and register; bad files are reported, not fatal."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lemlab.core.errors import DataError
from lemlab.core.paths import repo_root
from lemlab.core.themes import (
    DEFAULT_THEME,
    load_theme_choice,
    load_theme_file,
    load_themes,
    parse_theme,
    save_theme_choice,
)


def test_shipped_themes_dark_light_contrast() -> None:
    root = repo_root()
    assert root is not None
    specs, errors = load_themes([root / "themes"])
    assert errors == []
    by_name = {s.name: s for s in specs}
    assert {DEFAULT_THEME, "lemlab-light", "lemlab-contrast"} <= set(by_name)
    assert by_name["lemlab-light"].dark is False and by_name[DEFAULT_THEME].dark is True


def test_shipped_themes_register_with_textual() -> None:
    from textual.color import Color

    from lemlab.tui.theming import to_textual

    root = repo_root()
    assert root is not None
    paths = sorted((root / "themes").glob("*.toml"))
    assert len(paths) >= 3
    for path in paths:
        raw = tomllib.loads(path.read_text())
        css = to_textual(load_theme_file(path)).to_color_system().generate()
        for name in ("primary", "secondary", "accent", "background", "foreground", "error"):
            got, want = Color.parse(css[name]).rgb, Color.parse(raw[name]).rgb
            # Textual's colour system rounds through HSL: one step per channel at most.
            assert max(abs(g - w) for g, w in zip(got, want, strict=True)) <= 1, (path.name, name)
        assert css["border"] == raw.get("variables", {}).get("border", css["border"])


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"name": "x"}, "primary"),
        ({"name": "Bad Name", "primary": "#fff"}, "name"),
        ({"name": "x", "primary": "#ggg"}, "colour"),
        ({"name": "x", "primary": "#fff", "dark": "yes"}, "dark"),
        ({"name": "x", "primary": "#fff", "colour": "#000"}, "unknown keys colour"),
        ({"name": "x", "primary": "#fff", "variables": {"a": 1}}, "variables"),
    ],
)
def test_bad_theme_data(data: dict, problem: str) -> None:
    with pytest.raises(DataError, match=problem):
        parse_theme(data, "t.toml")


def test_later_folder_overrides_and_bad_files_listed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "t.toml").write_text('name = "t"\nprimary = "#111111"\n')
    (b / "t.toml").write_text('name = "t"\nprimary = "#222222"\n')
    (b / "bad.toml").write_text("name = ")
    specs, errors = load_themes([a, b])
    assert [s.colours["primary"] for s in specs] == ["#222222"]
    assert len(errors) == 1 and "bad.toml" in errors[0]


def test_choice_persisted_to_config() -> None:
    assert load_theme_choice() is None
    save_theme_choice("lemlab-contrast")
    assert load_theme_choice() == "lemlab-contrast"
    from lemlab.core.config import load_config

    assert load_config().theme == "lemlab-contrast"
