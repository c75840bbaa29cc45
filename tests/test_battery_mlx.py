"""The Battery tab on the REAL MLX engine and the tiny model: a 6-probe battery with baseline +
a kernel (8 tokens) run from the pane, cancelled after the first probe and resumed, sorted by
delta, stepped through side by side, one score overridden and found again after reopening."""

from __future__ import annotations

from pathlib import Path

from support.tui import wait_idle
from test_battery_pane import fill_setup, grid_ids, open_battery, pane

from lemlab.core.ab import abfile
from lemlab.core.sessions import Session, load_session_file
from lemlab.engine.fake import FakeEngine
from lemlab.tui.app import LemlabApp
from lemlab.tui.battery.messages import ProbeScored
from lemlab.tui.battery.side_by_side import SideBySideScreen
from lemlab.tui.services import Settings


def cancel_after_first_probe(p) -> None:  # type: ignore[no-untyped-def]
    """Cancel from the worker thread as the first probe line lands, so the cut is exact."""
    post = p.post_message

    def wrapped(msg):  # type: ignore[no-untyped-def]
        if isinstance(msg, ProbeScored) and p.job is not None:
            p.job.cancel()
        return post(msg)

    p.post_message = wrapped


async def _run_cancel_resume(pilot, app) -> Path:  # type: ignore[no-untyped-def]
    p = pane(app)
    cancel_after_first_probe(p)
    await fill_setup(pilot, battery="ccp6", kernels=("ethics-demo",), max_tokens="8")
    await wait_idle(pilot, app)
    del p.post_message
    rec = app.lab.session.records("battery_runs")[-1]
    assert rec["status"] == "cancelled" and rec["probes_done"] == 1
    path = Path(rec["path"])
    assert len(abfile.read_ab(path).probes) == 1 and grid_ids(app) == ["taiwan_direct"]
    await pilot.press("r")
    await wait_idle(pilot, app)
    rec = app.lab.session.records("battery_runs")[-1]
    assert rec["status"] == "done" and rec["probes_done"] == 6
    run = abfile.read_ab(path)
    assert len(run.probes) == 6 and run.summary is not None and not run.issues
    for line in run.probes:
        for name in ("baseline", "ethics-demo"):
            c = line.conditions[name]
            assert c.extra["tokens"] <= 8 and c.chars == len(c.response)
    return path


async def test_real_engine_battery_flow(tiny_model: Path, tmp_path: Path) -> None:
    from lemlab.engine.mlx_engine import MLXEngine

    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(engine, settings=settings, session=Session(name="real"), model=str(tiny_model))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await open_battery(pilot, app)
            assert app.lab.loaded is not None
            path = await _run_cancel_resume(pilot, app)
            p = pane(app)
            p.grid.table.move_cursor(row=0, column=3)  # the kernel column
            await pilot.press("d")
            await pilot.pause()
            deltas = [p.model.delta(r, "ethics-demo") for r in p.grid.shown]
            assert deltas == sorted(deltas, reverse=True)
            await pilot.press("v")
            await pilot.pause()
            sbs = app.screen
            assert isinstance(sbs, SideBySideScreen) and (sbs.left, sbs.right) == (
                "baseline",
                "ethics-demo",
            )
            first = sbs.row.id
            await pilot.press("n", "n")
            assert (
                sbs.row.id
                == p.grid.shown[
                    (p.grid.shown.index(next(r for r in p.grid.shown if r.id == first)) + 2) % 6
                ].id
            )
            await pilot.press("p", "escape")
            await pilot.pause()
            target = p.grid.current_row()
            await pilot.press("o")
            await pilot.pause()
            await pilot.press(*"30", "enter", *"gibberish scored as depth", "enter")
            await pilot.pause()
    finally:
        engine.shutdown()
    assert not engine.alive
    saved = load_session_file(tmp_path / "sessions" / "real.toml")
    (ov,) = saved.records("overrides")
    assert (ov["probe_id"], ov["condition"], ov["corrected"]) == (target.id, "ethics-demo", 30.0)
    assert ov["run"] == str(path.resolve())

    # Reopen the session (FakeEngine: no model needed to read a run): the table shows it.
    app2 = LemlabApp(FakeEngine(), settings=settings, session=Session(name="other"))
    async with app2.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app2)
        app2.open_session("real")
        await pilot.pause()
        p2 = pane(app2)
        assert p2.run_path == path
        row = next(r for r in p2.model.rows if r.id == target.id)
        assert p2.model.cell(row, "ethics-demo").score == 30.0
        assert p2.model.cell(row, "ethics-demo").override is not None


async def test_real_engine_rows_fill_cell_by_cell(tiny_model: Path, tmp_path: Path) -> None:
    """The first probe's row is in the table, with the baseline's real reply scored and tagged,
    while the kernel condition of that probe has not been generated yet."""
    from test_battery_review import Gate

    from lemlab.core.ab.score_table import failure_tag
    from lemlab.core.scoring.failure_modes import detect
    from lemlab.engine.mlx_engine import MLXEngine
    from lemlab.tui.battery.messages import ConditionScored

    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(engine, settings=settings, session=Session(name="live"), model=str(tiny_model))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await open_battery(pilot, app)
            p = pane(app)
            gate = Gate(p, ConditionScored)
            await fill_setup(pilot, battery="ccp6", kernels=("ethics-demo",), max_tokens="8")
            msg = await gate.reached(pilot, ConditionScored)
            assert msg.condition == "baseline" and p.job is not None and p.job.done == 0
            assert grid_ids(app) == ["taiwan_direct"]
            row = p.model.rows[0]
            reply = row.response("baseline")
            assert reply and row.score("baseline") is not None and row.score("ethics-demo") is None
            cell = str(p.grid.table.get_cell("taiwan_direct", "c:baseline")).split()
            assert cell[0] == f"{row.score('baseline'):.2f}"
            tag = failure_tag([m.label for m in detect(reply, row.prompt)])
            assert cell[1:] == ([tag] if tag else [])  # what the detector says of this reply
            assert str(p.grid.table.get_cell("taiwan_direct", "c:ethics-demo")).strip() == "—"
            gate.release(ConditionScored)
            await wait_idle(pilot, app)
            assert p.job is None and len(grid_ids(app)) == 6
            run = abfile.read_ab(app.lab.session.records("battery_runs")[-1]["path"])
            assert run.probes[0].conditions["baseline"].response == reply
    finally:
        engine.shutdown()
