"""Pilot flows of the shell: palette, help, themes, keymap, sessions, Models pane, quit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.notifications import notifications
from support.tui import fake_model_dir, make_app, wait_idle
from textual.command import CommandList
from textual.widgets import DataTable, Input

from lemlab.core.errors import LemlabError
from lemlab.core.paths import get_paths
from lemlab.core.sessions import Session, open_or_create
from lemlab.engine.fake import FakeEngine
from lemlab.tui.app import LemlabApp
from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.message import MessageView
from lemlab.tui.services import Settings


async def _palette_prompts(pilot, query: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    if query:
        await pilot.press(*query)
    await pilot.pause(0.5)
    listing = pilot.app.screen.query_one(CommandList)
    return [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]


async def test_palette_lists_every_verb(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        prompts = " | ".join(await _palette_prompts(pilot))
        for verb in (
            "Load model",
            "Unload model",
            "Pick kernel",
            "Set system prompt",
            "New session",
            "Open session",
            "Export chat as Markdown",
            "Export chat as training JSONL",
            "Switch theme",
            "Regenerate reply",
            "Cancel generation",
            "Help",
            "Quit",
        ):
            assert verb in prompts, verb
        await pilot.press("escape")
        found = await _palette_prompts(pilot, "regen")
        assert any("Regenerate reply" in p for p in found)


async def test_help_screen_lists_bindings_with_keymap(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, keymap={"chat.regenerate": "f9", "nope.id": "f10"})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        assert any("unknown binding ids nope.id" in n.message for n in notifications(app))
        await pilot.press("f1")
        await pilot.pause()
        table = app.screen.query_one("#help-keys", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        by_id = {r[2]: r for r in rows}
        assert by_id["chat.regenerate"][1] == "f9"
        assert by_id["app.quit"][1] == "ctrl+q"
        assert {"chat.cancel", "models.unload", "app.palette", "app.sessions"} <= set(by_id)
        assert all(r[3] for r in rows)  # every binding explains itself
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query("#help-keys")


async def test_keymap_override_changes_the_key(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, engine = make_app(tmp_path, model=model, keymap={"chat.regenerate": "f9"})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        box = app.query_one("#chat-input", Composer)
        box.value = "hello"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        await pilot.press("ctrl+r")  # no longer bound
        await wait_idle(pilot, app)
        assert len(engine.requests) == 1
        await pilot.press("f9")
        await wait_idle(pilot, app)
        assert len(engine.requests) == 2


async def test_theme_switch_is_persisted(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        assert app.theme == "lemlab-dark"
        assert {"lemlab-light", "lemlab-contrast"} <= set(app.available_themes)
        app.theme = "lemlab-light"
        await pilot.pause()
    from lemlab.core.themes import load_theme_choice

    assert load_theme_choice() == "lemlab-light"
    app2, _ = make_app(tmp_path)
    async with app2.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app2.theme == "lemlab-light"


async def test_broken_theme_file_falls_back_with_notice(tmp_path: Path) -> None:
    tdir = get_paths().themes_dir
    tdir.mkdir(parents=True)
    (tdir / "broken.toml").write_text('name = "broken"\nprimary = "not a colour!"\n')
    (tdir / "garbled.toml").write_text("name = [\n")
    app, _ = make_app(tmp_path, theme="broken")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        notes = " ".join(n.message for n in notifications(app))
        assert "theme file skipped" in notes and "broken.toml" in notes and "garbled.toml" in notes
        assert "theme 'broken' not found" in notes
        assert app.theme == "lemlab-dark"


async def test_models_pane_pick_load_unload_and_errors(tmp_path: Path) -> None:
    models = tmp_path / "models"
    base = fake_model_dir(models, "base-a")
    fake_model_dir(models, "other-b")
    adapter = models / "my-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps(
            {
                "model": "some-org/unrelated-model",
                "num_layers": 2,
                "lora_parameters": {"rank": 8, "scale": 20.0},
                "iters": 100,
                "learning_rate": 1e-5,
            }
        )
    )
    (adapter / "adapters.safetensors").write_bytes(b"")
    (adapter / "0000010_adapters.safetensors").write_bytes(b"")
    app, engine = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await pilot.press("f2")
        await pilot.pause()
        table = app.query_one("#models-table", DataTable)
        assert table.row_count == 2 and app.focused is table
        app.query_one("#model-filter", Input).value = "base"
        await pilot.pause()
        assert table.row_count == 1
        table.focus()
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert app.lab.loaded is not None and app.lab.loaded.model_path == str(base)
        assert "base-a" in str(app.query_one("#status-text").render())

        app.query_one("#model-filter", Input).value = ""
        await pilot.pause()
        adapters = app.query_one("#adapters-table", DataTable)
        assert adapters.row_count == 1
        adapters.focus()
        await pilot.press("enter")
        await wait_idle(pilot, app)
        warning = app.query_one("#adapter-warning")
        assert warning.has_class("-shown") and "unrelated-model" in str(warning.render())
        assert app.lab.loaded.adapter_path == str(adapter)

        found = await _palette_prompts(pilot, "checkpoint my")
        assert any("Load checkpoint: my-adapter @ 10" in p for p in found)
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert app.lab.loaded.adapter_path == str(adapter / "0000010_adapters.safetensors")
        assert app.lab.session.adapter["path"] == app.lab.loaded.adapter_path

        table.focus()
        await pilot.press("ctrl+u")
        await wait_idle(pilot, app)
        assert app.lab.loaded is None

        engine.load_error = "weights are corrupt"
        table.focus()
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert any(
            "load failed" in n.message and "weights are corrupt" in n.message
            for n in notifications(app)
        )
        assert app.lab.loaded is None


async def test_chat_without_model_says_so(tmp_path: Path) -> None:
    app, engine = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        app.query_one("#chat-input", Composer).value = "hello?"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert any("Load a model first" in n.message for n in notifications(app))
        assert engine.requests == [] and app.lab.session.messages == []


async def test_quit_and_reopen_session_shows_same_conversation(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    sessions = tmp_path / "sessions"
    settings = Settings(sessions_dir=sessions, scan_hf_cache=False)
    session, created = open_or_create("lab-notes", sessions)
    assert created
    app = LemlabApp(FakeEngine(), settings=settings, session=session, model=str(model))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        app.query_one("#chat-input", Composer).value = "remember this"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0

    again, created = open_or_create("lab-notes", sessions)
    assert not created
    app2 = LemlabApp(FakeEngine(), settings=settings, session=again)  # model from the session
    async with app2.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app2)
        views = list(app2.query(MessageView))
        assert [v.role for v in views] == ["user", "assistant"]
        assert views[0].content == "remember this"
        assert app2.lab.loaded is not None and app2.lab.loaded.model_path == str(model)


async def test_sessions_screen_opens_another_session(tmp_path: Path) -> None:
    from lemlab.core.sessions import save_session

    sessions = tmp_path / "sessions"
    other = Session(name="older")
    other.add_message("user", "from the other session")
    save_session(other, sessions)
    (sessions / "damaged.toml").write_text("schema_version = 1\nname = [")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert any("damaged.toml" in str(w.render()) for w in app.screen.query(".damaged"))
        table = app.screen.query_one("#sessions-table", DataTable)
        table.focus()
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert app.lab.session.name == "older"
        assert [v.content for v in app.query(MessageView)] == ["from the other session"]


def test_launch_rejects_bad_session_name() -> None:
    from lemlab.tui.launch import LaunchOptions, launch

    with pytest.raises(LemlabError, match="bad session name"):
        launch(LaunchOptions(session="../escape"))


async def test_reopened_session_restores_adapter_and_remote_model(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    adapter = tmp_path / "adapters" / "a1"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    sessions = tmp_path / "sessions"
    settings = Settings(sessions_dir=sessions, scan_hf_cache=False)

    session, _ = open_or_create("with-adapter", sessions)
    session.model = {"path": str(model)}
    session.set_adapter(str(adapter))
    app = LemlabApp(FakeEngine(), settings=settings, session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        assert app.lab.loaded is not None
        assert app.lab.loaded.adapter_path == str(adapter)

    # A server spec is not a folder, but the session still names it: it is loaded, not dropped.
    remote, _ = open_or_create("remote", sessions)
    remote.model = {"path": "openai:http://127.0.0.1:9/v1#m"}
    engine = FakeEngine()
    asked: list[str] = []
    real_load = engine.load
    engine.load = lambda m, a=None: (asked.append(m), real_load(m, a))[1]  # type: ignore[method-assign]
    app2 = LemlabApp(engine, settings=settings, session=remote)
    async with app2.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app2)
    assert asked == ["openai:http://127.0.0.1:9/v1#m"]
