"""Battery tab on FakeEngine (fast): set up and run from the form, cancel + resume, sort,
filter, side-by-side, overrides saved in the session, open / rescore / compare / export."""

from __future__ import annotations

import json
from pathlib import Path

from support.battery import SMALL_RUN, V1_RUN, copy_fixture
from support.notifications import notifications
from support.tui import fake_model_dir, make_app, wait_idle
from textual.widgets import Input, Select, SelectionList

from lemlab.core.ab import abfile
from lemlab.core.sessions import load_session_file
from lemlab.engine.fake import FakeEngine
from lemlab.tui.battery.override_dialog import OverrideDialog
from lemlab.tui.battery.setup_form import RunSetupScreen
from lemlab.tui.battery.side_by_side import SideBySideScreen
from lemlab.tui.screens.prompt import TextPrompt


def pane(app):  # type: ignore[no-untyped-def]
    return app.query_one("#battery-pane")


async def fill_setup(
    pilot, battery: str = "ccp6", kernels: tuple[str, ...] = ("ethics-demo",), max_tokens: str = "8"
) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("n")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RunSetupScreen)
    screen.query_one("#setup-battery", Select).value = battery
    for k in kernels:
        screen.query_one("#setup-kernels", SelectionList).select(k)
    screen.query_one("#setup-max-tokens", Input).value = max_tokens
    await pilot.press("ctrl+s")
    await pilot.pause()


async def open_battery(pilot, app) -> None:  # type: ignore[no-untyped-def]
    await wait_idle(pilot, app)
    await pilot.press("f4")
    await pilot.pause()


def grid_ids(app) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.id for r in pane(app).grid.shown]


async def test_run_from_form_writes_file_and_session(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, engine = make_app(tmp_path, model=model, engine=FakeEngine(length=6))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await fill_setup(pilot)
        await wait_idle(pilot, app)
        p = pane(app)
        assert p.job is None and len(grid_ids(app)) == 6
        assert p.model.conditions == ["baseline", "ethics-demo"]
        rec = app.lab.session.records("battery_runs")[-1]
        assert (
            rec["status"] == "done"
            and rec["battery"] == "ccp6"
            and rec["kernels"] == ["ethics-demo"]
        )
        path = Path(rec["path"])
        assert path.parent == tmp_path / "sessions" / "s1.runs" and path.name.endswith(
            "-ccp6.jsonl"
        )
        run = abfile.read_ab(path)
        assert len(run.probes) == 6 and run.summary is not None and not run.issues
        assert all(s.max_tokens == 8 for _, s in engine.requests)
        saved = load_session_file(tmp_path / "sessions" / "s1.toml")
        assert saved.records("battery_runs")[-1]["status"] == "done"


async def test_setup_form_rejects_bad_numbers(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await fill_setup(pilot, max_tokens="lots")
        assert isinstance(app.screen, RunSetupScreen)
        assert "not a number" in str(app.screen.query_one("#setup-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert pane(app).job is None and not app.lab.session.records("battery_runs")


async def test_unknown_battery_is_one_line_and_no_run(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#setup-battery-path", Input).value = str(tmp_path / "nope.json")
        await pilot.press("ctrl+s")
        await wait_idle(pilot, app)
        assert any("no such battery file" in n.message for n in notifications(app))
        assert pane(app).job is None and not app.lab.session.records("battery_runs")


async def test_cancel_then_resume(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, _ = make_app(tmp_path, model=model, engine=FakeEngine(length=8, delay=0.03))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await fill_setup(pilot)
        p = pane(app)
        for _ in range(200):  # one complete probe line (rows fill cell by cell before that)
            if p.job is not None and p.job.done >= 1:
                break
            await pilot.pause(0.05)
        await pilot.press("escape")
        await wait_idle(pilot, app)
        rec = app.lab.session.records("battery_runs")[-1]
        assert rec["status"] == "cancelled" and 1 <= rec["probes_done"] < 6
        run = abfile.read_ab(rec["path"])
        assert run.summary is None and len(run.probes) == rec["probes_done"]
        await pilot.press("r")
        await wait_idle(pilot, app)
        rec = app.lab.session.records("battery_runs")[-1]
        assert rec["status"] == "done" and len(app.lab.session.records("battery_runs")) == 1
        run = abfile.read_ab(rec["path"])
        assert [x.id for x in run.probes] == grid_ids(app) and len(run.probes) == 6
        assert run.summary is not None


async def _opened(tmp_path: Path, pilot, app, src: Path = SMALL_RUN) -> Path:  # type: ignore[no-untyped-def]
    path = copy_fixture(src, tmp_path / "runs")
    await open_battery(pilot, app)
    await pilot.press("l")
    await pilot.pause()
    assert isinstance(app.screen, TextPrompt)
    app.screen.query_one(Input).value = str(path)
    await pilot.press("enter")
    await pilot.pause()
    return path


async def test_sort_by_delta_and_by_column_and_filters(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _opened(tmp_path, pilot, app)
        p = pane(app)
        assert grid_ids(app) == [
            "taiwan_direct",
            "taiwan_baltic",
            "xinjiang",
            "tiananmen",
            "gov_criticism",
            "emotional",
        ]
        await pilot.press("right", "right", "right")  # probe, category, baseline -> ethics
        assert p.grid.current_condition() == "ethics"
        await pilot.press("d")
        await pilot.pause()
        deltas = [p.model.delta(r, "ethics") for r in p.grid.shown]
        assert deltas == sorted(deltas, reverse=True) and grid_ids(app)[0] == "tiananmen"
        await pilot.press("d")
        await pilot.pause()
        assert grid_ids(app)[0] == "gov_criticism"
        await pilot.press("s")
        await pilot.pause()
        assert grid_ids(app)[0] == "emotional"  # ethics score, highest first
        await pilot.press("f")
        await pilot.pause()
        assert p.model.category == "creative" and grid_ids(app) == ["emotional"]
        for _ in range(len(p.model.categories())):
            await pilot.press("f")
        await pilot.pause()
        assert p.model.category is None and len(grid_ids(app)) == 6
        await pilot.press("m")
        await pilot.pause()
        assert p.model.failure_mode == "collapse" and grid_ids(app) == ["gov_criticism"]


async def test_side_by_side_steps_and_flips(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _opened(tmp_path, pilot, app)
        await pilot.press("right", "right", "right", "down", "down")  # xinjiang / ethics
        await pilot.press("v")
        await pilot.pause()
        sbs = app.screen
        assert isinstance(sbs, SideBySideScreen)
        assert (sbs.row.id, sbs.left, sbs.right) == ("xinjiang", "baseline", "ethics")
        assert "refusal" in str(sbs.query_one("#sbs-left-failures").render())
        signals = sbs.query_one("#sbs-signals")
        names = [str(signals.get_row_at(i)[0]) for i in range(signals.row_count)]  # Text cells
        assert "compliance_markers" in names
        row = names.index("compliance_markers")
        assert "I cannot" in signals.get_row_at(row)[2]  # the phrase that fired, via explain
        await pilot.press("n")
        assert sbs.row.id == "tiananmen"
        await pilot.press("p", "p")
        assert sbs.row.id == "taiwan_baltic"
        await pilot.press("b")
        assert sbs.right == "json"
        await pilot.press("x")
        assert (sbs.left, sbs.right) == ("json", "baseline")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SideBySideScreen)


async def test_override_saved_in_session_and_shown_after_reopen(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        path = await _opened(tmp_path, pilot, app)
        p = pane(app)
        await pilot.press(
            "right", "right", "right", "down", "down", "down", "down"
        )  # gov_criticism / ethics
        before = p.model.summary()[1]
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, OverrideDialog)
        await pilot.press(*"12", "enter")
        await pilot.press("enter")  # empty reason: refused
        await pilot.pause()
        assert isinstance(app.screen, OverrideDialog)
        await pilot.press(*"collapse was a stop token", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, OverrideDialog)
        after = p.model.summary()[1]
        assert (before.regressed, after.regressed) == (1, 0)
        await pilot.press("w")
        await pilot.pause()
        assert p.model.summary()[1].regressed == 1 and "without overrides" in str(
            p.query_one("#battery-summary-title").render()
        )
    saved = load_session_file(tmp_path / "sessions" / "s1.toml")
    (rec,) = saved.records("overrides")
    assert (rec["probe_id"], rec["condition"], rec["original"], rec["corrected"]) == (
        "gov_criticism",
        "ethics",
        -19.0,
        12.0,
    )
    assert rec["run"] == str(path.resolve()) and rec["reason"] == "collapse was a stop token"

    app2, _ = make_app(tmp_path, session="other")
    async with app2.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app2)
        app2.open_session("s1")  # reopen the saved session from disk
        await _opened(tmp_path, pilot, app2)
        p = pane(app2)
        row = next(r for r in p.model.rows if r.id == "gov_criticism")
        cell = p.model.cell(row, "ethics")
        assert cell.override is not None and cell.score == 12.0 and cell.marker == "+"
        table = p.grid.table
        assert str(table.get_cell("gov_criticism", "c:ethics")) == "  12.00+* COLLAPSE"


async def test_open_old_research_file_rescore_compare_export(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        old = await _opened(tmp_path, pilot, app, V1_RUN)
        p = pane(app)
        assert p.scorer_id == "v1" and len(grid_ids(app)) == 3
        assert p.rescore("v2")
        rescored = abfile.read_ab(old)
        assert rescored.scorer == "v2" and p.scorer_id == "v2"
        assert p.model.rows[0].heuristic("baseline").keys() >= {"nuance", "lek_score"}
        other = copy_fixture(SMALL_RUN, tmp_path / "other")
        assert p.compare(other)
        assert p.model.conditions == ["A:baseline", "A:ethics", "B:baseline", "B:ethics"]
        assert len(grid_ids(app)) == 3
        md = p.export("md")
        assert md is not None and "| Probe | A:baseline |" in md.read_text()
        assert p.open_run(other)
        csv_path = p.export("csv")
        assert csv_path == other.with_name("run_small.view.csv")
        assert csv_path.read_text().splitlines()[0].startswith("id,category,baseline,ethics,json")


async def test_palette_has_battery_verbs_and_bindings_have_ids(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        names = [v.name for v in app.all_verbs()]
        for verb in (
            "Battery: new run…",
            "Battery: resume run",
            "Battery: sort by delta",
            "Battery: override score…",
            "Battery: export view as CSV",
        ):
            assert verb in names
        from lemlab.tui.panes.battery import BatteryPane

        for b in BatteryPane.BINDINGS:
            assert b.id and b.id.startswith("battery.") and b.tooltip  # type: ignore[union-attr]


async def test_adapter_condition_runs_and_chat_model_is_restored(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    adapter = tmp_path / "adapters" / "lek"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"model": str(model), "num_layers": 2}))
    (adapter / "adapters.safetensors").write_bytes((model / "model.safetensors").read_bytes())
    app, engine = make_app(tmp_path, model=model, engine=FakeEngine(length=4))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#setup-battery", Select).value = "ccp6"
        app.screen.query_one("#setup-adapters", Input).value = str(adapter)
        app.screen.query_one("#setup-limit", Input).value = "2"
        await pilot.press("ctrl+s")
        await wait_idle(pilot, app)
        p = pane(app)
        assert p.model.conditions == ["baseline", "lek"] and grid_ids(app) == [
            "taiwan_direct",
            "taiwan_baltic",
        ]
        run = abfile.read_ab(app.lab.session.records("battery_runs")[-1]["path"])
        assert run.summary is not None and run.probes[0].conditions["lek"].extra["adapter"] == str(
            adapter
        )
        info = app.lab.loaded
        assert info is not None and info.adapter_path is None  # the chat's model is back


async def test_engine_error_fails_the_run_in_one_line(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, _ = make_app(tmp_path, model=model, engine=FakeEngine(length=6, generate_error="kaboom"))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await fill_setup(pilot, kernels=())
        await wait_idle(pilot, app)
        rec = app.lab.session.records("battery_runs")[-1]
        assert rec["status"] == "failed" and "kaboom" in rec["error"] and "\n" not in rec["error"]
        assert pane(app).job is None
        assert any("battery run failed" in n.message for n in notifications(app))
