"""SVG snapshots of the Training pane at 120x40 following a finished fixture run (dark and
light theme), before and after scores are shown. Update with `pytest --snapshot-update`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_tui_support import make_app, open_training_tab

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
    from lemlab.core.curriculum import load_curriculum
    from lemlab.tui.training.follow import FollowedRun

    lab = tmp_path / "lab"
    stage = lab / "out" / "01-ethics" / "adapter"
    stage.mkdir(parents=True)
    shutil.copy(EVENTS, stage / "events.jsonl")
    cur = lab / "cur.toml"
    cur.write_text('base_model = "model"\noutput = "out"\n[[stage]]\nname = "ethics"\ndata = "d1"\n'
                   '[[stage]]\nname = "watts zen"\ndata = "d2"\n')  # fmt: skip
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
