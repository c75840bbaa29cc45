"""Pilot flows of the chat pane on FakeEngine: stream, cancel, regenerate, edit, slash commands."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from support.notifications import notifications
from support.tui import fake_model_dir, make_app, wait_idle
from textual.widgets import Input

from lemlab.core.sessions import load_session_file
from lemlab.engine.fake import FakeEngine
from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.message import MessageView


async def _send(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    box = pilot.app.query_one("#chat-input", Composer)
    box.focus()
    box.value = text
    await pilot.press("enter")


async def test_chat_streams_reply_and_saves(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, engine = make_app(tmp_path, model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        assert app.lab.loaded is not None
        await _send(pilot, "hello there")
        await wait_idle(pilot, app)
        views = app.query(MessageView)
        assert [v.role for v in views] == ["user", "assistant"]
        assert views.last().content.startswith("**Reply** to “hello there”")
        assert views.last().tokens_shown == 40
        assert app.query_one("#chat-pane").displayed_tokens == 40
        saved = load_session_file(tmp_path / "sessions" / "s1.toml")
        assert [m["role"] for m in saved.messages] == ["user", "assistant"]
        assert saved.messages[1]["stats"]["finish_reason"] == "stop"
        assert saved.model["path"] == str(model)
        assert isinstance(saved.messages[1]["score"], float)  # scored live by the default scorer
        meta = str(views.last().query_one(".message-meta").render())
        assert f"score {saved.messages[1]['score']:.2f}" in meta
        assert "40 tok · 100.0 tok/s · ttft 10 ms" in meta and "stop" in meta


async def test_escape_cancels_stream(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, engine = make_app(tmp_path, model=model, engine=FakeEngine(delay=0.02, length=500))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await _send(pilot, "long one please")
        await pilot.pause(0.2)
        assert app.query_one("#chat-stats").has_class("-generating")
        await pilot.press("escape")
        await wait_idle(pilot, app)
        msgs = app.lab.session.messages
        assert msgs[-1]["role"] == "assistant"
        assert msgs[-1]["stats"]["finish_reason"] == "cancelled"
        assert 0 < msgs[-1]["stats"]["generation_tokens"] < 500
        assert not app.query_one("#chat-stats").has_class("-generating")


async def test_regenerate_edit_and_slash_commands(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, engine = make_app(tmp_path, model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await _send(pilot, "first")
        await wait_idle(pilot, app)
        await _send(pilot, "/system Be brief and honest.")
        await wait_idle(pilot, app)
        assert app.lab.session.kernel["text"] == "Be brief and honest."
        await _send(pilot, "second")
        await wait_idle(pilot, app)
        # the system prompt reached the engine as the first turn
        sent, _ = engine.requests[-1]
        assert sent[0] == {"role": "system", "content": "Be brief and honest."}
        assert [t["role"] for t in sent[1:]] == ["user", "assistant", "user"]

        await pilot.press("ctrl+r")
        await wait_idle(pilot, app)
        assert len(engine.requests) == 3 and engine.requests[-1][0] == sent
        assert [m["role"] for m in app.lab.session.messages] == ["user", "assistant"] * 2

        await _send(pilot, "/undo")
        await wait_idle(pilot, app)
        assert [m["content"] for m in app.lab.session.messages if m["role"] == "user"] == ["first"]
        assert len(app.query(MessageView)) == 2

        box = app.query_one("#chat-input", Composer)
        box.focus()
        await pilot.press("up")  # empty input: edit last message
        await wait_idle(pilot, app)
        assert box.value == "first" and app.lab.session.messages == []

        box.value = "first, reworded"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert app.lab.session.messages[0]["content"] == "first, reworded"

        await _send(pilot, "/save")
        await wait_idle(pilot, app)
        out = Path(app.lab.sessions_dir).parent / "exports"
        from lemlab.core.paths import get_paths

        jsonl = get_paths().data_dir / "exports" / "s1.jsonl"
        assert jsonl.exists(), out
        import json

        line = json.loads(jsonl.read_text())
        assert [m["role"] for m in line["messages"]] == ["user", "assistant"]

        await _send(pilot, "/clear")
        await wait_idle(pilot, app)
        assert app.lab.session.messages == [] and len(app.query(MessageView)) == 0
        saved = load_session_file(tmp_path / "sessions" / "s1.toml")
        assert saved.messages == [] and saved.kernel["name"] == "custom"


async def test_kernel_pick_from_palette_and_sampler_fields(
    tmp_path: Path, lemlab_home: Path
) -> None:
    from lemlab.core.paths import get_paths

    kdir = get_paths().kernels_dir
    kdir.mkdir(parents=True)
    (kdir / "care.txt").write_text("Answer with care for the person asking.\n")
    model = fake_model_dir(tmp_path / "models")
    app, engine = make_app(tmp_path, model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press(*"care")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert app.lab.kernel_name == "care"
        assert app.lab.session.kernel["text"].startswith("Answer with care")
        assert "care" in str(app.query_one("#status-text").render())

        temp = app.query_one("#set-temperature", Input)
        temp.value = "0.7"
        app.query_one("#set-seed", Input).value = "42"
        await pilot.pause()
        assert app.lab.sampler.temperature == 0.7 and app.lab.sampler.seed == 42
        temp.value = "hot"
        await pilot.pause()
        assert temp.has_class("-invalid") and app.lab.sampler.temperature == 0.7
        await _send(pilot, "hi")
        await wait_idle(pilot, app)
        assert engine.requests[-1][1].seed == 42
        assert engine.requests[-1][0][0]["role"] == "system"


async def test_generation_error_is_one_line_not_a_crash(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, _ = make_app(
        tmp_path, model=model, engine=FakeEngine(generate_error="boom: out of memory")
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await _send(pilot, "hello")
        await wait_idle(pilot, app)
        notes = [n.message for n in notifications(app)]
        assert any("generation failed: boom: out of memory" in n for n in notes)
        assert [m["role"] for m in app.lab.session.messages] == ["user"]


async def test_gibberish_with_markup_characters_renders(tmp_path: Path) -> None:
    from lemlab.tui.chat.message import MessageView as MV

    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)  # the startup redraw of the chat must not remove our view
        view = MV("assistant")
        await app.query_one("#messages").mount(view)
        await view.append("[bold]<end_of_turn>[/] [link=x]ÿ\x00 *", 3)
        await view.finish({"stats": {"generation_tokens": 3}})
        await pilot.pause()
        shown = _screen_text(app)
        # On screen as typed: no markup applied (no bold, no link), the NUL shown as a picture.
        assert "[bold]<end_of_turn>[/] [link=x]ÿ" in shown and "\x00" not in shown
        assert "\u2400" in shown  # ␀, the control picture


def _screen_text(app: Any) -> str:
    """What the terminal shows now, one line per row (from Textual's SVG export)."""
    svg = app.export_screenshot()
    rows = re.findall(r'<text [^>]*y="([0-9.]+)"[^>]*>(.*?)</text>', svg)
    by_row: dict[float, str] = {}
    for y, part in rows:
        by_row[float(y)] = by_row.get(float(y), "") + html.unescape(part).replace("\xa0", " ")
    return "\n".join(by_row[y] for y in sorted(by_row))
