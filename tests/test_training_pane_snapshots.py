"""SVG snapshots of the Training pane at 120x40 following a finished fixture run (dark and
light theme), before and after scores are shown, and at 80x24 and 120x40 with a second run
overlaid on the chart. Update with `pytest --snapshot-update`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.tui import make_app, open_training_tab

EVENTS = Path(__file__).resolve().parent / "fixtures" / "training" / "lemlab_events.jsonl"


def _app(tmp_path: Path, theme: str):  # type: ignore[no-untyped-def]
    run = tmp_path / "lab" / "run-a"
    run.mkdir(parents=True)
    shutil.copy(EVENTS, run / "events.jsonl")  # names, not paths, reach the screen
    app, _ = make_app(tmp_path / "lab", theme=theme, session="snapshot")
    return app, run


@pytest.mark.parametrize("theme", ["lemlab-dark", "lemlab-light"])
@pytest.mark.parametrize("zoom", [0, 1])
def test_training_pane_snapshot(snap_compare, tmp_path: Path, theme: str, zoom: int) -> None:  # type: ignore[no-untyped-def]
    app, run = _app(tmp_path, theme)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        pane = await open_training_tab(pilot)
        pane.attach(str(run))
        for _ in range(zoom):
            await pilot.press("plus")
        await pilot.pause()
        app.clear_notifications()  # the toast names a temporary path
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_training_pane_snapshot_with_scores(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, run = _app(tmp_path, "lemlab-dark")

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        pane = await open_training_tab(pilot)
        pane.attach(str(run))
        for it in (10, 20, 30):  # checkpoint files for the alignment; scores as a run would give
            (run / f"{it:07d}_adapters.safetensors").write_bytes(b"")
        pane.scores = [(10, 3.5), (20, 6.25), (30, 4.0)]
        pane._compare()
        pane.redraw()
        await pilot.pause()
        app.clear_notifications()  # the toast names a temporary path
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_training_pane_snapshot_curriculum_stage(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A curriculum whose first stage trained and was not fused yet: the stage line under the head."""
    from lemlab.core.training.curriculum import load_curriculum
    from lemlab.tui.training.follow import FollowedRun

    lab = tmp_path / "lab"
    stage = lab / "out" / "01-ethics" / "adapter"
    stage.mkdir(parents=True)
    shutil.copy(EVENTS, stage / "events.jsonl")
    cur = lab / "cur.toml"
    cur.write_text(
        'base_model = "model"\noutput = "out"\n[[stage]]\nname = "ethics"\ndata = "d1"\n'
        '[[stage]]\nname = "watts zen"\ndata = "d2"\n'
    )
    app, _ = make_app(lab, session="snapshot")

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        pane = await open_training_tab(pilot)
        run = FollowedRun.attach(stage)
        run.labels = {"curriculum": str(cur), "stage": "ethics", "stage_number": 1}
        pane.follow(run)
        pane.flow.cur = load_curriculum(cur)
        pane.flow.show_line()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def _earlier_run(folder: Path) -> None:
    """The fixture run with every loss 0.4 higher: "the previous run" to compare with."""
    folder.mkdir(parents=True)
    lines = []
    for line in EVENTS.read_text().splitlines():
        event = json.loads(line)
        for key in ("train_loss", "val_loss"):
            if key in event:
                event[key] += 0.4
        lines.append(json.dumps(event))
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_training_pane_snapshot_two_runs_overlaid(
    snap_compare, tmp_path: Path, size: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    """The legend sits beside the data (never over it), names every line, and no checkpoint
    name is cut, at the smallest terminal too."""
    app, run = _app(tmp_path, "lemlab-dark")
    _earlier_run(tmp_path / "lab" / "run-earlier")
    for it in (10, 20, 30):
        (run / f"{it:07d}_adapters.safetensors").write_bytes(b"")

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        pane = await open_training_tab(pilot)
        pane.attach(str(run))
        pane.set_overlay(str(tmp_path / "lab" / "run-earlier"))
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
