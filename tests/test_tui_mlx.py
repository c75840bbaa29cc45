"""The TUI on the REAL MLX engine and the tiny random-weight model: load, stream, cancel, and
shutdown after run_test (the engine thread clears its MLX streams; the process must not abort)."""

from __future__ import annotations

from pathlib import Path

from support.notifications import notifications
from support.tui import wait_idle

from lemlab.core.sessions import Session
from lemlab.tui.app import LemlabApp
from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.message import MessageView
from lemlab.tui.services import Settings
from lemlab.tui.widgets.status_bar import DEMO_LABEL


async def test_real_engine_load_stream_cancel(tiny_model: Path, tmp_path: Path) -> None:
    from lemlab.engine.mlx_engine import MLXEngine

    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(engine, settings=settings, session=Session(name="real"), model=str(tiny_model))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_idle(pilot, app)
            info = app.lab.loaded
            assert info is not None and info.is_demo
            demo = app.query_one("#demo-label")
            assert demo.display and DEMO_LABEL in str(demo.render())
            app.query_one("#models-pane").model_changed()  # type: ignore[attr-defined] - as on every load event
            toasts = [n for n in notifications(app) if "random-weight demo model" in n.message]
            assert [n.title for n in toasts] == [
                "Loaded with warnings"
            ]  # once, under its own title

            app.lab.set_sampler(app.lab.sampler.__class__(max_tokens=24))
            app.query_one("#chat-input", Composer).value = "Say something."
            await pilot.press("enter")
            await wait_idle(pilot, app)
            reply = app.lab.session.messages[-1]
            assert reply["role"] == "assistant" and reply["stats"]["generation_tokens"] > 0
            assert reply["stats"]["finish_reason"] in ("stop", "length")
            views = list(app.query(MessageView))
            assert views[-1].content == reply["content"]  # gibberish rendered, no markup error

            app.lab.set_sampler(app.lab.sampler.__class__(max_tokens=100_000))
            app.query_one("#chat-input", Composer).value = "Go on for a long time."
            await pilot.press("enter")
            await pilot.pause(0.3)
            await pilot.press("escape")
            await wait_idle(pilot, app)
            last = app.lab.session.messages[-1]
            assert last["role"] == "assistant"
            # random weights may emit EOS before the cancel lands; either way it stopped cleanly
            assert last["stats"]["finish_reason"] in ("cancelled", "stop")
    finally:
        engine.shutdown()
    assert not engine.alive
