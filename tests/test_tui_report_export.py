"""Palette "Export report (HTML)" on FakeEngine: the Battery view (a run with a session override,
and a run-vs-run comparison) and the Training run (with its overlay and checkpoint scores), saved
under the session's exports folder with the path in a toast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from support.battery import SMALL_RUN, V1_RUN, copy_fixture
from support.notifications import notifications
from support.tui import fake_model_dir, make_app, open_training_tab, until, wait_idle
from test_battery_pane import fill_setup, open_battery
from textual.command import CommandList
from textual.widgets import Input

from lemlab.core.ab import abfile
from lemlab.core.ab.overrides import make_override
from lemlab.core.paths import get_paths
from lemlab.engine.fake import FakeEngine
from lemlab.tui.panes.training import TrainingPane

EVENTS = Path(__file__).resolve().parent / "fixtures" / "training" / "lemlab_events.jsonl"
TWO_PROBES = """name = "two"
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


def exports() -> Path:
    return get_paths().data_dir / "exports" / "s1"


async def run_from_palette(pilot, verb: str) -> None:  # type: ignore[no-untyped-def]
    """Type the verb's name in the palette, check it is the entry offered first, run it."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    await pilot.press(*verb)
    await pilot.pause(0.5)
    listing = pilot.app.screen.query_one(CommandList)
    assert verb in str(listing.get_option_at_index(0).prompt)
    await pilot.press("enter")
    await pilot.pause(0.3)


def toasted(app, path: Path) -> bool:  # type: ignore[no-untyped-def]
    return any(str(path) in n.message for n in notifications(app))


async def test_battery_export_holds_every_probe_and_the_sessions_override(tmp_path: Path) -> None:
    run_file = copy_fixture(SMALL_RUN, tmp_path / "runs")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        pane = app.query_one("#battery-pane")
        assert pane.export_html() is None  # nothing open yet: a toast says so, no file
        await pilot.pause()
        assert any("nothing to export" in n.message for n in notifications(app))
        assert pane.open_run(run_file)
        pane.record_override(
            make_override(
                run_file,
                "gov_criticism",
                "ethics",
                -19.0,
                12.0,
                "collapse was a <eos> & stop token",
            )
        )
        await run_from_palette(pilot, "Battery: export report (HTML)")
        await wait_idle(pilot, app)  # the page is drawn in a worker
        out = exports() / "run_small.report.html"
        assert out.is_file() and toasted(app, out)
    page = out.read_text(encoding="utf-8")
    ids = [p.id for p in abfile.read_ab(run_file).probes]
    assert len(ids) == 6
    for pid in ids:  # an expandable block per probe in each comparison (ethics, json)
        assert page.count(f"<summary>{pid} ·") == 2
    # The reason is the user's text: escaped, beside the cell it corrects.
    assert "<b>override</b> -19.00 -> 12.00: collapse was a &lt;eos&gt; &amp; stop token" in page
    assert page.count("<b>override</b>") == 1  # only the ethics side of gov_criticism


async def test_battery_export_of_a_comparison_is_run_vs_run(tmp_path: Path) -> None:
    a = copy_fixture(V1_RUN, tmp_path / "a")
    b = copy_fixture(SMALL_RUN, tmp_path / "b")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        pane = app.query_one("#battery-pane")
        assert pane.open_run(a) and pane.compare(b)
        shared = [r.id for r in pane.model.rows]
        await run_from_palette(pilot, "Battery: export report (HTML)")
        await wait_idle(pilot, app)
        out = exports() / "run_research_v1-vs-run_small.report.html"
        assert out.is_file() and toasted(app, out)
    page = out.read_text(encoding="utf-8")
    assert f"<h2>baseline: {b} vs {a}</h2>" in page  # B (new) against A, as the table's deltas
    assert "different scorers (v1 vs v2)" in page
    for pid in shared:
        assert f"<summary>{pid} ·" in page


async def test_battery_export_during_a_run_holds_the_probes_done_so_far(tmp_path: Path) -> None:
    app, _ = make_app(
        tmp_path, model=fake_model_dir(tmp_path / "models"), engine=FakeEngine(length=8, delay=0.05)
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await fill_setup(pilot)
        pane = app.query_one("#battery-pane")
        for _ in range(400):  # one complete probe line on disk
            if pane.job is not None and pane.job.done >= 1:
                break
            await pilot.pause(0.05)
        assert pane.job is not None
        out = pane.export_html()
        assert out is not None
        await until(pilot, out.is_file)  # written whole (atomic), while the run goes on
        await pilot.press("escape")  # cancel: the rest of the run is not needed
        await wait_idle(pilot, app)
        run_file = Path(app.lab.session.records("battery_runs")[-1]["path"])
    assert out == exports() / f"{run_file.stem}.report.html"
    page = out.read_text(encoding="utf-8")
    assert "no summary line yet" in page  # the figures are the probe lines' so far
    blocks = page.count("<summary>")
    assert 1 <= blocks < 6
    assert "<summary>" + abfile.read_ab(run_file).probes[0].id + " ·" in page


async def test_battery_export_of_a_file_gone_since_it_was_opened_is_one_line(
    tmp_path: Path,
) -> None:
    run_file = copy_fixture(SMALL_RUN, tmp_path / "runs")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        pane = app.query_one("#battery-pane")
        assert pane.open_run(run_file)
        run_file.write_text("not json\n")  # replaced by something that is no A/B run
        out = pane.export_html()
        await wait_idle(pilot, app)
        failed = [
            n.message for n in notifications(app) if n.message.startswith("report export failed")
        ]
        assert len(failed) == 1 and "not an A/B run" in failed[0] and "\n" not in failed[0]
        assert out is not None and not out.exists() and app.is_running


def _run_folder(root: Path, name: str) -> Path:
    run = root / name
    run.mkdir(parents=True)
    shutil.copy(EVENTS, run / "events.jsonl")
    (run / "adapter_config.json").write_text(
        json.dumps(
            {
                "model": "elsewhere",
                "iters": 30,
                "batch_size": 4,
                "learning_rate": 1e-5,
                "lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0},
            }
        )
    )
    for it in (10, 20, 30):  # FakeEngine never reads the weights
        (run / f"{it:07d}_adapters.safetensors").write_bytes(b"")
    return run


async def test_training_export_has_loss_chart_config_scores_and_overlay(tmp_path: Path) -> None:
    run, other = _run_folder(tmp_path, "run-b"), _run_folder(tmp_path, "run-c")
    battery = tmp_path / "two.toml"
    battery.write_text(TWO_PROBES)
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(run))
        await pilot.press("s")  # score every checkpoint on the fake engine
        await pilot.pause()
        app.screen.query_one("#score-path", Input).value = str(battery)
        app.screen.query_one("#score-tokens", Input).value = "4"
        await pilot.press("ctrl+s")
        await wait_idle(pilot, app)
        scores = list(pane.scores)
        assert [it for it, _ in scores] == [10, 20, 30]
        pane.set_overlay(str(other))
        await run_from_palette(pilot, "Training: export report (HTML)")
        out = exports() / "run-b-with-run-c.report.html"
        assert out.is_file() and toasted(app, out)
    page = out.read_text(encoding="utf-8")
    assert '<svg class="chart line-chart' in page
    ours, overlay = page.split("<h2>run-c: configuration</h2>")
    assert "<h2>run-b: configuration</h2>" in ours
    assert "<td>effective gradient (iters x batch)</td><td>120</td>" in ours
    assert "<td>LoRA rank / scale / dropout</td><td>8 / 20 / 0</td>" in ours
    for it, score in scores:  # the followed run's checkpoint table carries the pane's scores
        assert f'<td class="num">{it}</td>' in ours and f'<td class="num">{score:.2f}</td>' in ours
    assert (
        "not scored" not in ours and overlay.count("not scored") == 3
    )  # the overlay was not scored
    assert "<td>run-c</td>" in page  # the overlay's row in the runs table


async def test_training_export_uses_the_recorded_scores_and_skips_damaged_ones(
    tmp_path: Path,
) -> None:
    run = _run_folder(tmp_path, "run-b")
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane: TrainingPane = await open_training_tab(pilot)
        assert pane.export_html() is None  # no run followed: a toast, no file
        assert pane.attach(str(run))
        await pilot.pause()
        # As a session from an earlier sitting holds them (hand-edited: two entries are bad).
        assert pane._record is not None and not pane.scores
        pane._record["checkpoint_scores"] = [[10, 1.25], ["x", 2.0], [20, 3.5], "oops"]
        out = pane.export_html()
        await pilot.pause()
        assert out == exports() / "run-b.report.html" and toasted(app, out)
    page = out.read_text(encoding="utf-8")
    assert '<td class="num">1.25</td>' in page and '<td class="num">3.50</td>' in page
    assert page.count("not scored") == 1  # iteration 30


async def test_training_export_of_a_run_followed_through_its_mlx_lm_log(tmp_path: Path) -> None:
    logs = tmp_path / "logs"  # a log of any name: the folder holds no events.jsonl or train.log
    logs.mkdir()
    log = logs / "tuesday-lora.out"
    shutil.copy(EVENTS.with_name("mlx_lm_0.32.2_new_format.log"), log)
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        assert pane.attach(str(log))
        await run_from_palette(pilot, "Training: export report (HTML)")
        out = exports() / "logs.report.html"
        assert out.is_file() and toasted(app, out)
    page = out.read_text(encoding="utf-8")
    assert '<svg class="chart line-chart' in page
    # The runs table: first and last train loss and the best validation loss the log printed.
    assert '<td class="num">6.9040</td><td class="num">5.6180</td>' in page
    assert "not an adapter folder (no adapter_config.json)" in page  # said, not a failure
