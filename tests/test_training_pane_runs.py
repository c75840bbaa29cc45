"""Training pane (Pilot, FakeEngine): the run picker lists finished and running runs and attaches
with one key, a reopened session restores its run, the phase line and "no event for" come from
the events, seconds per iteration below 1 it/s, the quit question only while a run is live, the
start form's defaults raise no warning and its errors show at the top, continuing a run."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from support.tui import fake_model_dir, make_app, open_training_tab
from textual.widgets import DataTable, Input, Static

from lemlab.core.paths import get_paths
from lemlab.core.sessions import open_or_create
from lemlab.engine.fake import FakeEngine
from lemlab.engine.train_runner import TRAINER_MODULE
from lemlab.tui.app import LemlabApp
from lemlab.tui.services import Settings
from lemlab.tui.training.quit_dialog import QuitWithRunScreen
from lemlab.tui.training.run_picker import RunPickerScreen
from lemlab.tui.training.start_form import StartRunScreen

EVENTS = Path(__file__).resolve().parent / "fixtures" / "training" / "lemlab_events.jsonl"
HOST = socket.gethostname()


def _figures(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.query_one("#training-figures", Static).render())


def _trainer_like(config: Path | None = None) -> subprocess.Popen[bytes]:
    """A live process whose command line is a trainer's (the pid a live run's start records),
    on `config` as a real one would be."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(120)",
            TRAINER_MODULE,
            *([str(config)] if config else []),
        ]
    )


def _write(path: Path, *events: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _live_run(folder: Path, pid: int, *extra: dict) -> Path:
    now = time.time()
    (folder).mkdir(parents=True, exist_ok=True)
    (folder / "lemlab-train.toml").write_text(
        f'schema_version = 1\n[train]\nmodel = "/models/SmolLM-135M"\ndata = "/d"\nadapter_path = "{folder}"\n'
        "iters = 200\n"
    )
    return _write(
        folder / "events.jsonl",
        {"event": "start", "ts": now - 5, "total_iters": 200, "pid": pid, "host": HOST},
        {"event": "val", "ts": now - 4, "iteration": 1, "val_loss": 3.25},
        {"event": "train", "ts": now - 3, "iteration": 10, "train_loss": 3.0},
        *extra,
    )


async def test_run_picker_lists_a_finished_and_a_running_run_and_attaches_with_enter(
    tmp_path: Path,
) -> None:
    adapters = get_paths().runs_dir / "adapters"
    done = adapters / "run-done"
    done.mkdir(parents=True)
    shutil.copy(EVENTS, done / "events.jsonl")
    (done / "adapter_config.json").write_text(json.dumps({"model": "/m/tiny-model", "iters": 30}))
    trainer = _trainer_like()
    try:
        _live_run(adapters / "run-live", trainer.pid)
        app, _ = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            pane = await open_training_tab(pilot)
            await pilot.press("r")
            await pilot.pause()
            assert isinstance(app.screen, RunPickerScreen)
            table = app.screen.query_one(DataTable)
            rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
            assert rows[0][:5] == ["running", "run-live", "SmolLM-135M", "10/200", "3.250 @ 1"]
            assert rows[1][:5] == ["done", "run-done", "tiny-model", "30/30", "5.620 @ 30"]
            assert rows[0][5] == "runs folder"
            await pilot.press("down", "enter")  # one key attaches: the finished run
            await pilot.pause()
            assert pane.run is not None and pane.run.folder == done
            assert "status     done" in _figures(app)
            await pilot.press("r")
            await pilot.pause()
            await pilot.press("o")  # the live run as the overlay
            await pilot.pause()
            assert pane.overlay is not None and pane.overlay.folder == adapters / "run-live"
            legend = str(app.query_one("#training-legend", Static).render())
            assert "train (run-done)" in legend and "val (run-live)" in legend
            # the session now lists the attached run: the picker says it was found in both places
            await pilot.press("r")
            await pilot.pause()
            table = app.screen.query_one(DataTable)
            found = {
                str(table.get_row_at(i)[1]): str(table.get_row_at(i)[5])
                for i in range(table.row_count)
            }
            assert found["run-done"] == "session + runs folder"
    finally:
        trainer.kill()
        trainer.wait()


async def test_a_reopened_session_restores_its_run(tmp_path: Path) -> None:
    run = tmp_path / "run-a"
    run.mkdir()
    shutil.copy(EVENTS, run / "events.jsonl")
    app, _ = make_app(tmp_path, session="study")
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(run))
        await pilot.pause()
    session, created = open_or_create("study", tmp_path / "sessions")
    assert not created and len(session.records("training_runs")) == 1
    settings = Settings(
        model_dirs=[tmp_path / "models"], sessions_dir=tmp_path / "sessions", scan_hf_cache=False
    )
    again = LemlabApp(FakeEngine(fixed_stats=True), settings=settings, session=session)
    async with again.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.run is not None and pane.run.folder == run
        assert "status     done" in _figures(again) and "iteration 30/30" in _figures(again)
        head = str(again.query_one("#training-head", Static).render())
        assert "run-a/events.jsonl" in head and "no run yet" not in head
        assert len(again.lab.session.records("training_runs")) == 1  # updated, not added again


async def test_phase_line_quiet_note_and_seconds_per_iteration(tmp_path: Path) -> None:
    now = time.time()
    path = _write(
        tmp_path / "run" / "events.jsonl",
        {"event": "start", "ts": now - 100, "total_iters": 50},
        {"event": "phase", "ts": now - 99, "phase": "loading"},
        {"event": "phase", "ts": now - 60, "phase": "compiling"},
    )
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(path))
        await pilot.pause()
        text = _figures(app)
        assert "status     running · compiling kernels" in text
        assert re.search(r"no event for 1m\d\ds", text), text  # quiet for a minute: said so
        with open(path, "a") as fh:
            for line in ({"event": "phase", "ts": time.time(), "phase": "evaluating"},):
                fh.write(json.dumps(line) + "\n")
        await pilot.pause(0.6)
        text = _figures(app)
        assert "running · evaluating" in text and "no event for" not in text
        t = time.time()
        with open(path, "a") as fh:
            for i, it in enumerate((1, 2, 3)):  # one iteration every 4 seconds
                fh.write(
                    json.dumps(
                        {"event": "train", "ts": t - 8 + 4 * i, "iteration": it, "train_loss": 2.0}
                    )
                    + "\n"
                )
            fh.write(json.dumps({"event": "phase", "ts": t, "phase": "training"}) + "\n")
        await pilot.pause(0.6)
        text = _figures(app)
        assert "iteration 3/50" in text and "4.0 s/it" in text and "0.0 it/s" not in text
        assert "running · training" in text


async def test_quit_asks_only_while_a_run_is_live(tmp_path: Path) -> None:
    live = tmp_path / "live"
    trainer = _trainer_like(live / "lemlab-train.toml")
    try:
        _live_run(live, trainer.pid)
        app, _ = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            pane = await open_training_tab(pilot)
            assert pane.attach(str(live))
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert isinstance(app.screen, QuitWithRunScreen)
            assert "live: live" in str(app.screen.query_one("#quit-text", Static).render())
            await pilot.press("escape")  # cancel: nothing quits, nothing stops
            await pilot.pause()
            assert app.return_code is None and not isinstance(app.screen, QuitWithRunScreen)
            assert trainer.poll() is None
            await pilot.press("ctrl+q")
            await pilot.pause()
            await pilot.press("s")  # stop it: the recorded trainer gets SIGINT, then the app quits
            await pilot.pause()
            assert app.return_code == 0
        assert trainer.wait(30) != 0  # the sleeper stand-in dies of the SIGINT
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
    done = tmp_path / "done"
    done.mkdir()
    shutil.copy(EVENTS, done / "events.jsonl")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(done))
        # A finished run: no question, the app just quits. run_action, not pilot.press: a key
        # that ends the app can leave the pilot waiting for a refresh that never comes.
        await app.run_action("quit")
        await pilot.pause()
        assert app.return_code == 0 and not isinstance(app.screen, QuitWithRunScreen)


async def test_start_form_defaults_raise_no_warning_and_errors_show_at_the_top(
    tmp_path: Path,
) -> None:
    from lemlab.core.training.config import default_num_layers

    model = fake_model_dir(tmp_path / "models")  # 2 layers
    data = tmp_path / "data"
    data.mkdir()
    app, _ = make_app(tmp_path, model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_training_tab(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, StartRunScreen)
        form.query_one("#tf-data", Input).value = str(data)
        await pilot.pause()
        values = {
            n: form.query_one(f"#tf-{n}", Input).value
            for n in ("iters", "batch_size", "num_layers", "learning_rate")
        }
        assert values == {
            "iters": "400",
            "batch_size": "1",
            "num_layers": str(default_num_layers(2)),
            "learning_rate": "5e-06",
        }
        assert not form.query_one("#train-warning").display  # the defaults are the safe settings
        explain = str(form.query_one("#train-explain", Static).render())
        assert "effective gradient = iterations x batch size" in explain
        await pilot.press("ctrl+s")  # the data folder has no train.jsonl: the error must be seen
        await pilot.pause()
        error = form.query_one("#train-error", Static)
        assert error.display and "train.jsonl" in str(error.render())
        assert error.region.y < form.query_one("#tf-model", Input).region.y  # above the fields
        assert error.region.height and error.region.bottom <= 40  # on screen at 120x40
        form.query_one("#tf-learning_rate", Input).value = "1e-5"
        form.query_one("#tf-batch_size", Input).value = "4"
        await pilot.pause()
        warning = form.query_one("#train-warning", Static)
        assert warning.display and "suggested: --learning-rate 5e-06 --batch-size 1" in str(
            warning.render()
        )
        assert (
            warning.region.bottom <= 40
            and warning.region.y < form.query_one("#tf-model", Input).region.y
        )


async def test_continue_opens_the_form_with_what_is_and_is_not_restored(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    run = tmp_path / "run-a"
    run.mkdir()
    (run / "lemlab-train.toml").write_text(
        f'schema_version = 1\n[train]\nmodel = "{model}"\ndata = "{tmp_path}"\nadapter_path = "{run}"\n'
        "iters = 30\nrank = 4\nseed = 7\nnum_layers = 1\n"
    )
    lines = EVENTS.read_text().splitlines()
    stopped = json.dumps(
        {
            "event": "stopped",
            "ts": "2026-11-24T06:11:59+00:00",
            "message": "stopped by SIGINT",
            "path": str(run / "adapters.safetensors"),
            "iteration": 23,
        }
    )
    (run / "events.jsonl").write_text("\n".join([*lines[:-1], stopped]) + "\n")
    for it in (10, 20):
        (run / f"{it:07d}_adapters.safetensors").write_bytes(b"")
    (run / "adapters.safetensors").write_bytes(b"")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(run))
        await pilot.press("R")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, StartRunScreen)
        note = str(form.query_one("#train-note", Static).render())
        assert "adapter weights after iteration 23 of 30, for the 7 iterations left" in note
        assert "not restored: the optimizer state" in note
        assert form.query_one("#tf-iters", Input).value == "7"
        assert form.query_one("#tf-adapter_path", Input).value == f"{run}-continued"
        cfg = form._config()
        assert cfg.resume_adapter_file == str(run / "adapters.safetensors") and (
            cfg.rank,
            cfg.seed,
        ) == (4, 7)


def test_integer_ticks_and_smoothing() -> None:
    from lemlab.tui.training.loss_plot import integer_ticks, smooth

    assert integer_ticks(1, 30, 8) == [5, 10, 15, 20, 25, 30]
    assert integer_ticks(20, 30, 3) == [20, 25, 30]
    assert integer_ticks(1, 7, 10) == [1, 2, 3, 4, 5, 6, 7]
    assert all(type(t) is int for t in integer_ticks(3, 100_003, 6))
    assert len(integer_ticks(3, 100_003, 6)) <= 6
    flat = smooth([(i, 2.0) for i in range(1, 6)])
    assert [round(y, 9) for _, y in flat] == [2.0] * 5  # bias-corrected: no pull towards zero
    noisy = smooth([(1, 1.0), (2, 3.0), (3, 1.0), (4, 3.0)])
    assert max(y for _, y in noisy[1:]) < 3.0 and min(y for _, y in noisy[1:]) > 1.0


async def test_smoothing_key_labels_both_lines(tmp_path: Path) -> None:
    run = tmp_path / "run-a"
    run.mkdir()
    shutil.copy(EVENTS, run / "events.jsonl")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(run))
        pane.focus_default()
        await pilot.press("m")
        await pilot.pause()
        legend = str(app.query_one("#training-legend", Static).render())
        assert "train (run-a, raw)" in legend and "train (run-a, smoothed 0.8)" in legend
        await pilot.press("m")
        await pilot.pause()
        assert "smoothed" not in str(app.query_one("#training-legend", Static).render())
