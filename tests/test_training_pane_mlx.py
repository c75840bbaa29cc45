"""Training pane with real work: a LoRA run on the tiny model started from the form (the same
child `lemlab train` uses), stopping one, and score vs checkpoint through the real MLX engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.train import write_chat_data
from support.tui import make_app, open_training_tab, until, wait_idle
from test_training_pane import TINY_BATTERY
from textual.widgets import Input, Static

from lemlab.core.sessions import Session
from lemlab.core.training.config import resolve_config
from lemlab.engine.train_runner import start_training
from lemlab.tui.app import LemlabApp
from lemlab.tui.panes.training import TrainingPane
from lemlab.tui.services import Settings
from lemlab.tui.training.checkpoint_table import CheckpointTable


async def _fill_form(pilot, values: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("n")
    await pilot.pause()
    for name, value in values.items():
        pilot.app.screen.query_one(f"#tf-{name}", Input).value = value
    await pilot.pause()


async def test_start_from_form_runs_to_done_with_checkpoints(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    app, _ = make_app(tmp_path, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_training_tab(pilot)
        await _fill_form(
            pilot,
            {
                "data": str(data),
                "adapter_path": str(adapter),
                "iters": "20",
                "batch_size": "2",
                "num_layers": "2",
                "save_every": "10",
                "steps_per_eval": "10",
                "steps_per_report": "5",
            },
        )
        form = app.screen
        assert form.query_one("#tf-model", Input).value == str(tiny_model)  # the loaded model
        plan = str(form.query_one("#train-plan", Static).render())
        assert "20 x 2 = 40 examples" in plan and "trained layers      2 / 2" in plan
        assert "small model" in str(form.query_one("#train-warning", Static).render())
        await pilot.press("ctrl+s")  # the warning needs a second press
        await pilot.pause()
        assert app.screen is form
        await pilot.press("ctrl+s")
        await pilot.pause()
        pane = app.query_one(TrainingPane)
        assert pane.run is not None and pane.run.origin == "started"
        await until(pilot, lambda: pane.run is not None and pane.run.state.finished, step=0.2)
        await pilot.pause(TrainingPane.POLL_SECONDS * 2)
        assert pane.run.state.status == "done", pane.run.exit_note
        assert "status     done" in str(app.query_one("#training-figures", Static).render())
        rows = app.query_one(CheckpointTable).rows_shown
        assert [r[0] for r in rows] == ["10", "20"] and all(
            (adapter / r[4]).is_file() for r in rows
        )
        record = app.lab.session.records("training_runs")[-1]
        assert (
            record["origin"] == "started"
            and record["status"] == "done"
            and record["total_iters"] == 20
        )


async def test_stop_keeps_checkpoints(tiny_model: Path, tmp_path: Path) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    app, _ = make_app(tmp_path, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_training_tab(pilot)
        await _fill_form(
            pilot,
            {
                "data": str(data),
                "adapter_path": str(adapter),
                "iters": "100000",
                "batch_size": "1",
                "num_layers": "1",
                "learning_rate": "5e-6",
                "save_every": "5",
                "steps_per_eval": "100000",
                "steps_per_report": "5",
            },
        )
        await pilot.press("ctrl+s")  # ~100,000 effective steps still warns: confirm
        await pilot.pause()
        await pilot.press("ctrl+s")
        pane = app.query_one(TrainingPane)
        await until(
            pilot, lambda: pane.run is not None and bool(pane.run.state.checkpoints), step=0.2
        )
        pane.focus_default()
        await pilot.press("x")
        await until(pilot, lambda: pane.run is not None and pane.run.state.finished, step=0.2)
        await pilot.pause(TrainingPane.POLL_SECONDS * 2)
        assert pane.run.state.status == "stopped"
        assert pane.run.process is not None and pane.run.process.wait(30) == 130
        assert "status     stopped" in str(app.query_one("#training-figures", Static).render())
        assert all(Path(p).is_file() for _, p in pane.run.state.checkpoints)
        assert (adapter / "adapters.safetensors").is_file()


@pytest.fixture
def two_checkpoint_adapter(tiny_model: Path, tmp_path: Path) -> Path:
    """A real 20-iteration run saving checkpoints at 10 and 20 (through the train core's API)."""
    adapter = tmp_path / "scored"
    cfg = resolve_config(
        {
            "model": str(tiny_model),
            "data": str(write_chat_data(tmp_path / "d")),
            "adapter_path": str(adapter),
            "iters": 20,
            "batch_size": 2,
            "num_layers": 2,
            "save_every": 10,
            "steps_per_eval": 10,
            "steps_per_report": 5,
        }
    )
    assert start_training(cfg).wait(120) == 0
    return adapter


async def test_score_vs_checkpoint_real_engine(
    tiny_model: Path, two_checkpoint_adapter: Path, tmp_path: Path
) -> None:
    from lemlab.engine.mlx_engine import MLXEngine

    battery = tmp_path / "tiny2.toml"
    battery.write_text(TINY_BATTERY)
    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(engine, settings=settings, session=Session(name="score"), model=str(tiny_model))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_idle(pilot, app)
            app.action_show_tab("training")
            pane = app.query_one(TrainingPane)
            assert pane.attach(str(two_checkpoint_adapter))
            await pilot.pause()
            pane.focus_default()
            await pilot.press("s")
            await pilot.pause()
            app.screen.query_one("#score-path", Input).value = str(battery)
            app.screen.query_one("#score-tokens", Input).value = "4"
            await pilot.press("ctrl+s")
            await wait_idle(pilot, app)
            assert [it for it, _ in pane.scores] == [10, 20]  # one mean score per checkpoint
            rows = app.query_one(CheckpointTable).rows_shown
            assert [r[0] for r in rows] == ["10", "20"] and all(r[2] for r in rows)
            assert pane.comparison is not None and pane.comparison.best_by_score is not None
            assert pane.comparison.best_by_val_loss is not None
            info = app.lab.loaded  # the chat's model is back, without a checkpoint
            assert (
                info is not None
                and info.model_path == str(tiny_model)
                and info.adapter_path is None
            )
    finally:
        engine.shutdown()
    assert not engine.alive
