"""SVG snapshots of the Models and Chat panes at 120x40 in a dark and a light theme (the Battery
and Training panes' owners snapshot theirs). Content is fixed: FakeEngine
with fixed stats, fixed names, no HF cache scan. Update with `pytest --snapshot-update`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tui import fake_model_dir, make_app, wait_idle
from textual.widgets import Input

from lemlab.tui.chat.composer import Composer

THEMES = ("lemlab-dark", "lemlab-light")


def _app(tmp_path: Path, theme: str):  # type: ignore[no-untyped-def]
    root = tmp_path / "lab"  # one fixed layout per test; names (not paths) reach the screen
    model = fake_model_dir(root / "models", "tiny-gemma-4bit")
    fake_model_dir(root / "models", "other-model")
    app, _ = make_app(root, model=model, theme=theme, session="snapshot")
    return app


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_idle(pilot, app)
    for box in [*app.query(Input), *app.query(Composer)]:
        box.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("tab", ["models"])
def test_pane_snapshot(snap_compare, tmp_path: Path, theme: str, tab: str) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(pilot)
        pilot.app.action_show_tab(tab)
        await _settle(pilot)

    assert snap_compare(_app(tmp_path, theme), terminal_size=(120, 40), run_before=run_before)


SIZES = {"120x40": (120, 40), "80x24": (80, 24)}


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", SIZES)
def test_chat_snapshot(snap_compare, tmp_path: Path, theme: str, size: str) -> None:  # type: ignore[no-untyped-def]
    """The kernel's name, the reply and what it was made with, and F1 in the footer, at the
    smallest terminal lemlab supports and a roomy one."""

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _settle(pilot)
        app = pilot.app
        app.query_one("#chat-pane").slash.set_system("Answer briefly.", "brief")
        app.query_one("#chat-input", Composer).value = "What is a kernel?"
        await pilot.press("enter")
        await _settle(pilot)
        app.screen.set_focus(None)  # no cursor: the picture is the same on every run
        await pilot.pause()
        seen.append(app.export_screenshot())

    seen: list[str] = []
    assert snap_compare(_app(tmp_path, theme), terminal_size=SIZES[size], run_before=run_before)
    screen = seen[-1]  # what the picture must show, read from its text
    assert "kernel:&#160;brief" in screen and "f1" in screen and "Reply" in screen
