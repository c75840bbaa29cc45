"""A training started from the TUI outlives the app: one process runs the app (Pilot, the real
start form, a real LoRA run on the tiny model), quits while the run is live and answers "leave
running", and exits; the trainer keeps going without its parent; a new app on the same session
attaches to it on its own and sees it finish. Real processes throughout."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from support.train import read_events, write_chat_data
from support.tui import open_training_tab, until

from lemlab.engine.train_runner import trainer_gone

TESTS = Path(__file__).resolve().parent
ITERS = 400


async def _first_app(model: str, data: str, adapter: str, sessions: str, out: str) -> None:
    """Runs in its own process: start a training from the form, quit, leave it running."""
    from textual.widgets import Input

    from lemlab.core.sessions import Session
    from lemlab.engine.fake import FakeEngine
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.services import Settings
    from lemlab.tui.training.quit_dialog import QuitWithRunScreen

    settings = Settings(model_dirs=[], sessions_dir=Path(sessions), scan_hf_cache=False)
    app = LemlabApp(FakeEngine(fixed_stats=True), settings=settings, session=Session(name="lab"))
    report: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        for name, value in (
            ("model", model),
            ("data", data),
            ("adapter_path", adapter),
            ("iters", str(ITERS)),
            ("steps_per_report", "10"),
            ("steps_per_eval", "100"),
            ("save_every", "100"),
        ):
            form.query_one(f"#tf-{name}", Input).value = value
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is not form, str(form.query_one("#train-error").render())
        await until(
            pilot, lambda: pane.run is not None and bool(pane.run.state.train_points), guard=240
        )
        await pilot.press("ctrl+q")
        await pilot.pause()
        report["asked"] = isinstance(app.screen, QuitWithRunScreen)
        report["pid"] = pane.run.process.popen.pid  # type: ignore[union-attr]
        await pilot.press("l")  # leave it running
        await pilot.pause()
        report["quit"] = app.return_code
    Path(out).write_text(json.dumps(report))


def test_a_tui_started_run_outlives_the_app_and_a_new_app_sees_it_finish(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    sessions = tmp_path / "sessions"
    out = tmp_path / "first.json"
    code = (
        "import asyncio, sys; import test_training_tui_detach as t; "
        "asyncio.run(t._first_app(*sys.argv[1:]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    first = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tiny_model),
            str(data),
            str(adapter),
            str(sessions),
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["asked"] is True and report["quit"] == 0
    events = read_events(adapter / "events.jsonl")
    start = events[0]
    assert start["pid"] == report["pid"] and start["detached"] is True
    # The app's process is gone; the trainer is not: it is still training.
    kinds = [e["event"] for e in events]
    assert not {"stopped", "error", "done"} & set(kinds), kinds
    assert not trainer_gone(start["pid"], start["host"])
    asyncio.run(_second_app(sessions, adapter))
    events = read_events(adapter / "events.jsonl")
    assert events[-1]["event"] == "done" and events[-1]["iteration"] == ITERS
    assert not any(e.get("message") == "parent process exited" for e in events)


async def _second_app(sessions: Path, adapter: Path) -> None:
    from lemlab.core.sessions import open_or_create
    from lemlab.engine.fake import FakeEngine
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.services import Settings

    session, created = open_or_create("lab", sessions)
    assert not created
    settings = Settings(model_dirs=[], sessions_dir=sessions, scan_hf_cache=False)
    app = LemlabApp(FakeEngine(fixed_stats=True), settings=settings, session=session)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.run is not None and pane.run.folder == adapter and pane.run.origin == "attached"
        await until(pilot, lambda: pane.run.state.status == "done", guard=400)  # type: ignore[union-attr]
        from textual.widgets import Static

        text = str(app.query_one("#training-figures", Static).render())
        assert "status     done" in text and f"iteration {ITERS}/{ITERS}" in text
        record = app.lab.session.records("training_runs")[-1]
        assert (
            record["status"] == "done" and record["origin"] == "started"
        )  # started by the first app
