"""Training pane on FakeEngine: attach to events files and both mlx-lm stdout formats, follow a
growing file, zoom, session records, score vs checkpoint (fake engine), palette verbs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.notifications import notifications
from support.tui import fake_model_dir, make_app, open_training_tab, wait_idle
from textual.widgets import Input, Static

from lemlab.tui.panes.training import TrainingPane
from lemlab.tui.training.checkpoint_table import BEST_SCORE, BEST_VAL, CheckpointTable
from lemlab.tui.training.loss_plot import LossPlot, thin, zoom_window

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "training"
EVENTS = FIXTURES / "lemlab_events.jsonl"
TINY_BATTERY = """name = "tiny2"
description = "two probes for tests"
[[probe]]
id = "T1"
category = "test"
prompt = "Say one thing about honesty."
[[probe]]
id = "T2"
category = "test"
prompt = "Describe the sea."
"""


def _pane(app) -> TrainingPane:  # type: ignore[no-untyped-def]
    return app.query_one(TrainingPane)


def _figures(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.query_one("#training-figures", Static).render())


async def test_attach_events_file_shows_figures_plot_and_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "run-a"
    run.mkdir()
    shutil.copy(EVENTS, run / "events.jsonl")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        await pilot.press("a")
        await pilot.pause()
        app.screen.query_one("#prompt-text", Input).value = str(run)  # the adapter folder
        await pilot.press("enter")
        await pilot.pause(0.3)
        text = _figures(app)
        assert "status     done" in text and "iteration 30/30" in text
        assert (
            "train loss 5.618" in text and "val loss   5.620" in text and "tokens/s 4,211" in text
        )
        assert "best val   5.620 at iteration 30" in text
        plot = app.query_one(LossPlot)
        assert [p[0] for p in plot.train] == [5, 10, 15, 20, 25, 30]
        assert [p[0] for p in plot.val] == [1, 10, 20, 30]
        legend = str(
            app.query_one("#training-legend", Static).render()
        )  # beside the chart, not over it
        assert (
            "train (run-a)" in legend
            and "val (run-a)" in legend
            and "best val loss (iteration 30)" in legend
        )
        rows = app.query_one(CheckpointTable).rows_shown
        assert [r[0] for r in rows] == ["10", "20", "30"] and rows[2][3] == BEST_VAL
        assert "run-a/events.jsonl" in str(app.query_one("#training-head", Static).render())
        record = app.lab.session.records("training_runs")[-1]
        assert (
            record["origin"] == "attached"
            and record["status"] == "done"
            and record["path"] == str(run)
        )
        saved = (tmp_path / "sessions" / "s1.toml").read_text()
        assert "[[training_runs]]" in saved and 'status = "done"' in saved
        assert pane.run is not None and pane.run.request_stop() == "the run has already ended"


async def test_growing_events_file_updates_the_pane(tmp_path: Path) -> None:
    lines = EVENTS.read_text().splitlines(keepends=True)
    live = tmp_path / "live" / "events.jsonl"
    live.parent.mkdir()
    live.write_text("".join(lines[:4]))  # start, val 1, train 5, val 10
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(live))
        await pilot.pause()
        assert "iteration 10/30" in _figures(app) and "status     running" in _figures(app)
        with live.open("a") as fh:
            fh.write("".join(lines[4:8]))  # train 10, checkpoint 10, train 15, val 20
            fh.write(lines[8][:20])  # a half-written line is not read yet
        await pilot.pause(TrainingPane.POLL_SECONDS * 3)
        shown = [p[0] for p in app.query_one(LossPlot).train]
        assert shown[-1] == 15 and "iteration 20/30" in _figures(app)  # train 20 not complete yet
        with live.open("a") as fh:
            fh.write("".join([lines[8][20:], *lines[9:]]))
        await pilot.pause(TrainingPane.POLL_SECONDS * 3)
        assert "status     done" in _figures(app)
        assert app.lab.session.records("training_runs")[-1]["status"] == "done"


@pytest.mark.parametrize(
    "log",
    [
        "mlx_lm_0.31.3_old_format.log",
        "mlx_lm_0.32.2_new_format.log",
        "mlx_lm_0.32.2_new_format_pty.log",
    ],
)
async def test_attach_stdout_logs_of_both_formats(tmp_path: Path, log: str) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(FIXTURES / log))
        await pilot.pause()
        text = _figures(app)
        fmt = "log-old" if "old" in log else "log-new"
        assert (
            f"(log format: {fmt})" in text
            and "iteration 30/30" in text
            and "status     done" in text
        )
        assert "train loss 5.618" in text and "val loss   5.620" in text
        assert [r[0] for r in app.query_one(CheckpointTable).rows_shown] == ["10", "20", "30"]
        assert [p[0] for p in app.query_one(LossPlot).val] == [1, 10, 20, 30]


async def test_attach_to_nothing_is_one_line(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert not pane.attach(str(tmp_path / "missing"))
        empty = tmp_path / "empty"
        empty.mkdir()
        assert not pane.attach(str(empty))
        await pilot.pause()
        messages = [n.message for n in notifications(app)]
        assert any("no such file or folder" in m for m in messages)
        assert any("holds neither events.jsonl nor train.log" in m for m in messages)
        assert pane.run is None


async def test_zoom_keys_narrow_and_widen_the_plot(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        pane.attach(str(EVENTS))
        await pilot.pause()
        plot = app.query_one(LossPlot)
        assert plot.window is None and "all iterations" in plot.plt.build()
        await pilot.press("plus")
        assert plot.zoom == 1 and plot.window == 15 and "last 15 iterations" in plot.plt.build()
        await pilot.press("plus", "plus", "plus")
        assert plot.window == 10  # never below MIN_WINDOW
        await pilot.press("minus")
        assert plot.zoom == 3
        await pilot.press("0")
        assert plot.zoom == 0 and plot.window is None


def test_zoom_and_thinning_helpers() -> None:
    assert (
        zoom_window(1000, 0) is None and zoom_window(1000, 1) == 500 and zoom_window(1000, 3) == 125
    )
    pts = [(i, float(i)) for i in range(1, 1001)]
    few = thin(pts, 100)
    assert len(few) <= 101 and few[0] == (1, 1.0) and few[-1] == (1000, 1000.0)
    assert thin(pts[:5], 100) == pts[:5]


def _fake_checkpoint_run(root: Path) -> Path:
    """The fixture run with (fake) checkpoint files next to it: FakeEngine never reads weights."""
    run = root / "run-b"
    run.mkdir(parents=True)
    shutil.copy(EVENTS, run / "events.jsonl")
    (run / "adapter_config.json").write_text(json.dumps({"model": "elsewhere"}))
    for it in (10, 20, 30):
        (run / f"{it:07d}_adapters.safetensors").write_bytes(b"")
    return run


async def test_score_vs_checkpoint_on_fake_engine(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    run = _fake_checkpoint_run(tmp_path)
    battery = tmp_path / "tiny2.toml"
    battery.write_text(TINY_BATTERY)
    app, engine = make_app(tmp_path, model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        pane.attach(str(run))
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        app.screen.query_one("#score-path", Input).value = str(battery)
        app.screen.query_one("#score-tokens", Input).value = "6"
        await pilot.press("ctrl+s")
        await wait_idle(pilot, app)
        assert [it for it, _ in pane.scores] == [10, 20, 30]
        rows = app.query_one(CheckpointTable).rows_shown
        assert all(r[2] for r in rows)  # one score per checkpoint
        assert (
            sum(BEST_SCORE in r[3] for r in rows) == 1 and sum(BEST_VAL in r[3] for r in rows) == 1
        )
        assert [p[0] for p in app.query_one(LossPlot).scores] == [10, 20, 30]
        assert "best by score: iteration" in str(app.query_one("#training-scores", Static).render())
        assert len(engine.requests) == 6 and all(s.max_tokens == 6 for _, s in engine.requests)
        assert app.lab.loaded is not None and app.lab.loaded.model_path == str(model)
        assert app.lab.loaded.adapter_path is None  # the chat's model is back
        record = app.lab.session.records("training_runs")[-1]
        assert [r[0] for r in record["checkpoint_scores"]] == [10, 20, 30]


async def test_palette_lists_training_verbs(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        names = [v.name for v in app.all_verbs()]
        for verb in (
            "Training: start a run…",
            "Training: attach to a run…",
            "Training: stop the run",
            "Training: score checkpoints…",
            "Training: zoom in",
        ):
            assert verb in names
        ids = {b.id for b in TrainingPane.BINDINGS}
        assert {"training.start", "training.attach", "training.stop", "training.score"} <= ids
        assert all(b.tooltip for b in TrainingPane.BINDINGS)


async def test_self_distill_feeds_the_progress_widget(tmp_path: Path) -> None:
    from lemlab.tui.widgets.distill_progress import DistillProgress

    model = fake_model_dir(tmp_path / "models")
    battery = tmp_path / "tiny2.toml"
    battery.write_text(TINY_BATTERY)
    out = tmp_path / "distill" / "out.jsonl"
    app, engine = make_app(tmp_path, model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        pane.focus_default()
        await pilot.press("d")
        await pilot.pause()
        for name, value in (
            ("battery", str(battery)),
            ("output", str(out)),
            ("samples", "2"),
            ("threshold", "-1000"),
            ("max_tokens", "8"),
        ):
            app.screen.query_one(f"#df-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await wait_idle(pilot, app)
        widget = app.query_one(DistillProgress)
        assert widget.display and widget.generated == 4 and widget.kept == 4
        assert "kept 4 / generated 4 of 4" in widget.summary_text()
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert [x["type"] for x in lines] == ["training"] * 4 + ["summary"]
        assert len(engine.requests) == 4
        assert app.lab.loaded is not None and app.lab.loaded.model_path == str(model)
