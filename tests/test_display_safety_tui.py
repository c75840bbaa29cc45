"""Issue 16: replies and A/B files holding terminal escape sequences, in the TUI (Pilot on the
fake engine). Every display path shows the controls as visible symbols, never as markup, and
the SVG screenshot stays valid XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support.notifications import notifications
from support.tui import fake_model_dir, make_app, wait_idle
from textual.widgets import Input

from lemlab.core.ab.abfile import condition_entry, probe_line, summarize
from lemlab.engine import fake
from lemlab.engine.fake import FakeEngine
from lemlab.tui.battery.side_by_side import SideBySideScreen
from lemlab.tui.chat.message import MessageView
from lemlab.tui.screens.prompt import TextPrompt

CLEAR_AND_RETITLE = "\x1b[2J\x1b]0;pwned\x07"


def _svg(app) -> str:  # type: ignore[no-untyped-def]
    svg = app.export_screenshot()
    ET.fromstring(svg)  # raises on a character XML forbids (the demo model's \x04, \x1c)
    return svg.replace("&#160;", " ")


def _plain(widget) -> str:  # type: ignore[no-untyped-def]
    return str(widget.render())


def _assert_safe(text: str) -> None:
    """No C0 control but newline and tab, no DEL or C1 control."""
    raw = [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]
    assert raw == [], (raw, text[-400:])


async def test_chat_reply_with_escape_sequences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reply = f"Sure{CLEAR_AND_RETITLE} then \x1b[31mred [b]bold?[/b] demo\x04bytes\x1c and \x9b."
    pieces = [reply[i : i + 5] for i in range(0, len(reply), 5)]  # sequences split over tokens
    monkeypatch.setattr(fake, "fake_reply", lambda messages, sampler, length: pieces)
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        box = app.query_one("#chat-input")
        box.focus()
        box.value = "say it"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        view = app.query(MessageView).last()
        assert view.content == reply  # the session keeps the exact text
        assert app.lab.session.messages[-1]["content"] == reply
        svg = _svg(app)
        assert "Sure␛[2J␛]0;pwned␇ then ␛[31mred [b]bold?[/b] demo␄bytes␜ and \\x9b." in svg
        _assert_safe(svg)


async def test_reopened_session_and_generation_error_are_shown_safely(tmp_path: Path) -> None:
    engine = FakeEngine(fixed_stats=True, generate_error=f"server said {CLEAR_AND_RETITLE}[b]x[/b]")
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"), engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        box = app.query_one("#chat-input")
        box.focus()
        box.value = "hello"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        shown = [n.message for n in notifications(app)]
        assert any("server said ␛[2J␛]0;pwned␇[b]x[/b]" in m for m in shown), shown
        assert all(not n.markup for n in notifications(app))
        _assert_safe(_svg(app))


def _hostile_run(path: Path) -> Path:
    conds = {
        "baseline": condition_entry("plain answer, long enough to score", {"lek_score": 1.0}, 1.0),
        "kernel[b]": condition_entry(
            f"evil{CLEAR_AND_RETITLE} text\x04\x1c end", {"lek_score": 3.0}, 1.0
        ),
    }
    probes = [
        probe_line("p[b]1[/b]\x1b[31m", "cat\x1b[5m", f"prompt {CLEAR_AND_RETITLE}", conds, ts="T"),
        probe_line("p2", "cat", "fine prompt", conds, ts="T"),
    ]
    summary = summarize(probes, "m", 10, 64, ["baseline", "kernel[b]"], ts="T")
    path.write_text("".join(json.dumps(x) + "\n" for x in [*probes, summary]), encoding="utf-8")
    return path


async def test_battery_pane_opens_a_hostile_run_file(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path / "hostile.jsonl")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_idle(pilot, app)
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        app.screen.query_one(Input).value = str(run)
        await pilot.press("enter")
        await pilot.pause()
        pane = app.query_one("#battery-pane")
        table = pane.grid.table
        first = table.get_row_at(0)
        assert first[0].plain == "p[b]1[/b]␛[31m" and first[1].plain == "cat␛[5m"
        assert [str(c.label) for c in table.columns.values()][2:4] == ["baseline", "kernel[b]"]
        await pilot.press("right", "right", "right")  # onto the kernel's response cell
        await pilot.pause()
        preview = _plain(pane.query_one("#battery-preview"))
        assert "kernel[b]: evil␛[2J␛]0;pwned␇ text␄␜ end" in preview
        _assert_safe(preview)
        svg = _svg(app)
        assert "evil␛[2J␛]0;pwned␇" in svg and "p[b]1[/b]␛[31m" in svg
        _assert_safe(svg)
        await pilot.press("v")
        await pilot.pause()
        sbs = app.screen
        assert isinstance(sbs, SideBySideScreen)
        assert "evil␛[2J␛]0;pwned␇ text␄␜ end" in _plain(sbs.query_one("#sbs-right-text"))
        assert "p[b]1[/b]␛[31m [cat␛[5m]" in _plain(sbs.query_one("#sbs-title"))
        assert "prompt ␛[2J␛]0;pwned␇" in _plain(sbs.query_one("#sbs-prompt"))
        svg = _svg(app)
        assert "evil␛[2J␛]0;pwned␇" in svg
        _assert_safe(svg)


async def test_model_folder_names_are_shown_as_text(tmp_path: Path) -> None:
    fake_model_dir(tmp_path / "models", "evil\x1b]0;pwned\x07[b]x")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await pilot.press("f2")
        await pilot.pause()
        table = app.query_one("#models-table")
        cells = [str(c) for c in table.get_row_at(0)]
        assert any("evil␛]0;pwned␇[b]x" in c for c in cells), cells
        svg = _svg(app)
        assert "evil␛]0;pwned␇[b]x" in svg
        _assert_safe(svg)


async def test_training_pane_shows_event_text_visibly(tmp_path: Path) -> None:
    from support.tui import open_training_tab

    run = tmp_path / f"run{CLEAR_AND_RETITLE}"
    run.mkdir()
    events = [
        {
            "event": "start",
            "ts": "2026-11-24T06:11:52+00:00",
            "total_iters": 10,
            "model": "/m",
            "data": "/d",
            "adapter_path": str(run),
            "pid": 1,
        },
        {
            "event": "error",
            "ts": "2026-11-24T06:11:53+00:00",
            "message": f"boom {CLEAR_AND_RETITLE}\x04",
        },
    ]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(run))
        await pilot.pause(0.3)
        figures = _plain(app.query_one("#training-figures"))
        assert "boom ␛[2J␛]0;pwned␇␄" in figures
        assert "run␛[2J␛]0;pwned␇" in _plain(app.query_one("#training-head"))
        svg = _svg(app)
        assert "boom ␛[2J␛]0;pwned␇␄" in svg
        _assert_safe(svg)


async def test_real_engine_reply_with_control_bytes_keeps_the_screenshot_valid(
    tiny_model: Path, tmp_path: Path
) -> None:
    """The random-weight model really emits control bytes (ESC, \\x04, \\x1c ...): the reply is
    kept exactly, shown with pictures, and the SVG screenshot parses."""
    from lemlab.core.engine_api import Sampler
    from lemlab.core.safe_text import visible
    from lemlab.core.sessions import Session
    from lemlab.engine.mlx_engine import MLXEngine
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.services import Settings

    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(engine, settings=settings, session=Session(name="real"), model=str(tiny_model))
    try:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_idle(pilot, app)
            app.lab.set_sampler(Sampler(max_tokens=60))
            box = app.query_one("#chat-input")
            box.value = "Say something."
            await pilot.press("enter")
            await wait_idle(pilot, app)
            reply = app.lab.session.messages[-1]["content"]
            controls = [c for c in reply if ord(c) < 32 and c not in "\n\t" or c == "\x7f"]
            assert controls, repr(reply)  # this model and prompt do produce some
            svg = _svg(app)
            _assert_safe(svg)
            shown = visible(reply)
            assert any(ch in svg for ch in shown if 0x2400 <= ord(ch) <= 0x2421)
    finally:
        engine.shutdown()
