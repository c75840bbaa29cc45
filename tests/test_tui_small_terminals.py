"""Small and plain terminals (issue 14): F1 stays in the footer at 80x24, the palette's
Screenshot saves under the data folder and says where, a theme switch edits config.toml in
place keeping the user's comments."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from support.notifications import notifications
from support.tui import fake_model_dir, make_app, until, wait_idle
from textual.widgets._footer import FooterKey

from lemlab.core.config_edit import set_config_value
from lemlab.core.errors import DataError
from lemlab.core.paths import get_paths

USER_CONFIG = """\
# my lab: models live on the big disk
model_dirs = ["~/models"]  # the fast one

# keys I changed
[keymap]
"chat.regenerate" = "f9"
"""


@pytest.mark.parametrize("tab", ["chat", "models", "battery", "training"])
async def test_f1_is_reachable_in_the_footer_at_80x24(tmp_path: Path, tab: str) -> None:
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot, app)
        app.action_show_tab(tab)
        await wait_idle(pilot, app)
        keys = list(app.screen.query(FooterKey))
        f1 = [k for k in keys if k.key == "f1"]
        assert f1 and f1[0].region.width > 0 and f1[0].region.right <= 80
        assert f1[0].region.y == 23  # on the bottom line, not scrolled away


async def test_palette_screenshot_goes_to_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"  # a server's home: no ~/Downloads
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Screenshot")
        await pilot.pause(0.3)
        await pilot.press("enter")
        folder = get_paths().data_dir / "screenshots"
        await until(pilot, lambda: folder.is_dir() and any(folder.glob("*.svg")))
        shot = next(folder.glob("*.svg"))
        assert shot.read_text().lstrip().startswith("<svg")
        await pilot.pause()
        assert any(str(shot) in n.message for n in notifications(app))
        assert not (home / "Downloads").exists()


async def test_theme_switch_keeps_the_config_comments(tmp_path: Path) -> None:
    config = get_paths().config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(USER_CONFIG)
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_idle(pilot, app)
        app.theme = "lemlab-light"
        await pilot.pause()
    text = config.read_text()
    for line in USER_CONFIG.splitlines():
        assert line in text  # every comment, key and blank line survives
    assert tomllib.loads(text)["theme"] == "lemlab-light"
    assert text.index('theme = "lemlab-light"') < text.index("# keys I changed")  # a top-level key


def test_config_edit_replaces_in_place_and_refuses_what_would_not_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('theme = "old"  # my pick\n' + USER_CONFIG)
    set_config_value("theme", "new", path)
    assert path.read_text().startswith('theme = "new"  # my pick\n')
    before = path.read_text()
    with pytest.raises(DataError):
        set_config_value("them", "typo", path)  # unknown key: load_config would refuse it
    path.write_text(before + "[broken\n")
    with pytest.raises(DataError):
        set_config_value("theme", "x", path)
    assert path.read_text() == before + "[broken\n"
