"""Curricula from the Training pane: two real stages on the tiny model with the fuse confirmed in
the dialog; a declined fuse stops after stage 1 and a rerun goes on with stage 2; a bad file is
one line of notice."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from support.notifications import notifications
from support.train import write_chat_data
from support.tui import make_app, open_training_tab, until, wait_idle
from textual.widgets import Input, Static

from lemlab.core.models.paths import is_fused
from lemlab.core.training.curriculum import load_curriculum, stage_rows
from lemlab.tui.panes.training import TrainingPane
from lemlab.tui.training.curriculum_dialogs import CurriculumDialog, FuseDialog


def write_curriculum(root: Path, model: Path) -> Path:
    """Two stages of a few iterations each; data written here, paths relative to the file."""
    write_chat_data(root / "data-a", n_train=6, n_valid=2)
    write_chat_data(root / "data-b", n_train=6, n_valid=2)
    path = root / "cur.toml"
    path.write_text(
        f'schema_version = 1\nbase_model = "{model}"\noutput = "out"\n'
        "[defaults]\nsteps_per_report = 2\nsteps_per_eval = 4\nsave_every = 4\nval_batches = 1\n"
        "learning_rate = 5e-6\nnum_layers = 1\nbatch_size = 1\n"
        '[[stage]]\nname = "ethics"\ndata = "data-a"\niters = 4\n'
        '[[stage]]\nname = "watts zen"\ndata = "data-b"\niters = 2\nlearning_rate = 2e-6\n'
    )
    return path


async def _open_plan(pilot, path: Path | None) -> CurriculumDialog:  # type: ignore[no-untyped-def]
    """c, then the path (None: keep the one the prompt offers), then the plan dialog."""
    pane = pilot.app.query_one(TrainingPane)
    pane.focus_default()
    await pilot.press("c")
    await pilot.pause()
    if path is not None:
        pilot.app.screen.query_one("#prompt-text", Input).value = str(path)
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(pilot.app.screen, CurriculumDialog)
    return pilot.app.screen


def _table(dialog: CurriculumDialog) -> str:
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(dialog.query_one("#curriculum-stages", Static).content)
    return console.export_text()


def _messages(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [n.message for n in notifications(app)]


async def test_two_stages_with_confirmed_fuse(tiny_model: Path, tmp_path: Path) -> None:
    path = write_curriculum(tmp_path, tiny_model)
    cur = load_curriculum(path)
    app, _ = make_app(tmp_path, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        dialog = await _open_plan(pilot, path)
        table = _table(dialog)
        assert "ethics" in table and "watts zen" in table and "data-a" in table and "2e-06" in table
        assert table.count("pending") == 2
        await pilot.press("enter")  # run
        await until(pilot, lambda: isinstance(app.screen, FuseDialog))
        # Stage 1 was followed in the pane as a run started here.
        assert (
            pane.run is not None
            and pane.run.origin == "started"
            and pane.run.state.status == "done"
        )
        assert pane.run.folder == cur.adapter_dir(0)
        details = str(app.screen.query_one("#fuse-details", Static).render())
        assert str(cur.fused_dir(0)) in details and str(cur.adapter_dir(0)) in details
        assert "size      about" in details and "KB" in details
        assert "1 ethics trained, fuse?" in str(
            app.query_one("#training-curriculum", Static).render()
        )
        await pilot.press("enter")  # fuse
        await until(pilot, lambda: not pane.flow.active)
        await wait_idle(pilot, app)
        assert [r.status for r in stage_rows(cur, is_fused)] == ["done", "done"]
        # The fuse says what the merged model is and that it kept the stage's validation loss.
        fused_note = [m for m in _messages(app) if m.startswith("stage 1: merged model")]
        assert fused_note and "merged vs" in fused_note[0] and "base + adapter" in fused_note[0]
        line = str(app.query_one("#training-curriculum", Static).render())
        assert "1 ethics done · 2 watts zen done" in line
        config = json.loads((cur.adapter_dir(1) / "adapter_config.json").read_text())
        assert config["model"] == str(cur.fused_dir(0))  # stage 2 trained on the merged weights
        assert pane.flow.outcome.startswith("curriculum done"), pane.flow.outcome
        state = tomllib.loads((cur.output / "curriculum-state.toml").read_text())
        assert [s["status"] for s in state["stage"]] == ["fused", "trained"]
        records = [r for r in app.lab.session.records("training_runs") if r.get("curriculum")]
        assert [(r["stage"], r["status"]) for r in records] == [
            ("ethics", "done"),
            ("watts zen", "done"),
        ]
        assert records[0]["fused"] == str(cur.fused_dir(0)) and records[1]["model"] == str(
            cur.fused_dir(0)
        )
        saved = tomllib.loads((tmp_path / "sessions" / "s1.toml").read_text())
        assert [r["stage_number"] for r in saved["training_runs"]] == [1, 2]


async def test_declined_fuse_stops_and_a_rerun_continues(tiny_model: Path, tmp_path: Path) -> None:
    path = write_curriculum(tmp_path, tiny_model)
    cur = load_curriculum(path)
    app, _ = make_app(tmp_path, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        await _open_plan(pilot, path)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, FuseDialog))
        await pilot.press("n")  # stop here
        await pilot.pause()
        assert (
            not pane.flow.active and not cur.fused_dir(0).exists() and not cur.stage_dir(1).exists()
        )
        assert "stopped after stage 1" in pane.flow.outcome and "stage 2" in pane.flow.outcome
        assert [r.status for r in stage_rows(cur, is_fused)] == ["trained (not fused)", "pending"]
        events = (cur.adapter_dir(0) / "events.jsonl").read_text()

        dialog = await _open_plan(pilot, None)  # the prompt offers the last path
        assert "trained (not fused)" in _table(dialog)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, FuseDialog))  # stage 1 is not retrained
        assert (cur.adapter_dir(0) / "events.jsonl").read_text() == events
        assert not list(cur.adapter_dir(0).glob("events.*.jsonl"))  # nothing archived either
        await pilot.press("y")
        await until(pilot, lambda: not pane.flow.active)
        await wait_idle(pilot, app)
        assert [r.status for r in stage_rows(cur, is_fused)] == ["done", "done"]
        config = json.loads((cur.adapter_dir(1) / "adapter_config.json").read_text())
        assert config["model"] == str(cur.fused_dir(0))
        stages = [
            r["stage"] for r in app.lab.session.records("training_runs") if r.get("curriculum")
        ]
        assert stages == ["ethics", "watts zen"]  # the rerun trained only stage 2


async def test_bad_curriculum_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('base_model = "m"\noutput = "o"\n')
    broken = tmp_path / "broken.toml"
    broken.write_text("[[stage]\nname =")
    no_model = tmp_path / "no-model.toml"
    write_chat_data(tmp_path / "d")
    no_model.write_text('base_model = "missing"\noutput = "o"\n[[stage]]\nname = "a"\ndata = "d"\n')
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        expected = {
            bad: "at least one [[stage]]",
            broken: "not valid TOML",
            tmp_path / "nope.toml": "not found",
            no_model: "model folder not found",
        }
        for path, words in expected.items():
            app.clear_notifications()
            pane.focus_default()
            await pilot.press("c")
            await pilot.pause()
            app.screen.query_one("#prompt-text", Input).value = str(path)
            await pilot.press("enter")
            await pilot.pause()
            assert not isinstance(app.screen, CurriculumDialog) and not pane.flow.active
            messages = _messages(app)
            assert len(messages) == 1 and "\n" not in messages[0] and words in messages[0], messages
        assert not (tmp_path / "o").exists()


async def test_curriculum_key_and_palette_verb(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        assert "Training: run curriculum…" in [v.name for v in app.all_verbs()]
        binding = next(b for b in TrainingPane.BINDINGS if b.action == "curriculum")
        assert binding.id == "training.curriculum" and binding.tooltip and binding.key == "c"


async def test_stopping_a_stage_stops_the_curriculum(tiny_model: Path, tmp_path: Path) -> None:
    path = write_curriculum(tmp_path, tiny_model)
    path.write_text(path.read_text().replace("iters = 4", "iters = 100000"))  # stopped long before
    cur = load_curriculum(path)
    app, _ = make_app(tmp_path, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        await _open_plan(pilot, path)
        await pilot.press("enter")
        await until(pilot, lambda: pane.run is not None and bool(pane.run.state.train_points))
        assert "1 ethics training" in str(app.query_one("#training-curriculum", Static).render())
        pane.focus_default()
        await pilot.press("x")
        await until(pilot, lambda: not pane.flow.active)
        assert pane.run is not None and pane.run.state.status == "stopped"
        # The flow's own record of how it ended: toasts expire on a timer, so under load a
        # notification can be gone before it is read.
        assert "stage 1 ethics ended stopped" in pane.flow.outcome, pane.flow.outcome
        assert not isinstance(app.screen, FuseDialog) and not cur.stage_dir(1).exists()
        state = tomllib.loads((cur.output / "curriculum-state.toml").read_text())
        assert [s["status"] for s in state["stage"]] == ["stopped", "pending"]
        assert "stopped" in _table(await _open_plan(pilot, None))


async def test_eval_battery_after_a_stage_in_the_pane(tiny_model: Path, tmp_path: Path) -> None:
    write_chat_data(tmp_path / "data-a", n_train=6, n_valid=2)
    path = tmp_path / "cur.toml"
    path.write_text(
        f'schema_version = 1\nbase_model = "{tiny_model}"\noutput = "out"\n'
        '[eval]\nprompts = "ccp6"\nlimit = 1\nmax_tokens = 4\n'
        "[defaults]\nsteps_per_report = 2\nsteps_per_eval = 4\nsave_every = 4\n"
        "val_batches = 1\nlearning_rate = 5e-6\nnum_layers = 1\nbatch_size = 1\n"
        '[[stage]]\nname = "ethics"\ndata = "data-a"\niters = 2\n'
    )
    cur = load_curriculum(path)
    app, _ = make_app(tmp_path, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        await _open_plan(pilot, path)
        await pilot.press("enter")  # run
        await until(pilot, lambda: pane.flow.phase == "evaluating")
        assert "1 ethics evaluating" in str(app.query_one("#training-curriculum", Static).render())
        await until(pilot, lambda: not pane.flow.active)
        await wait_idle(pilot, app)
        assert pane.flow.outcome.startswith("curriculum done"), pane.flow.outcome
        summary = json.loads((cur.stage_dir(0) / "eval.jsonl").read_text().splitlines()[-1])
        avg = {c["name"]: c["avg_lek"] for c in summary["conditions"]}
        row = tomllib.loads((cur.output / "curriculum-state.toml").read_text())["stage"][0]
        assert (row["battery_before"], row["battery_after"]) == (avg["baseline"], avg["trained"])
        note = f"stage 1 ethics: battery {avg['baseline']:.2f} -> {avg['trained']:.2f}"
        assert any(m.startswith(note) for m in _messages(app)), _messages(app)
