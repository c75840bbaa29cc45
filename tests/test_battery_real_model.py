"""The Battery tab on the real model (SmolLM2-135M-Instruct, 3-7 tokens/s here): while a run
goes the reply streams into the preview and the first row is in the table before the kernel
condition has run; the finished table tags failure modes and shows deltas; an override made in
side by side after stepping lands on the probe shown. Two short probes, a one-line kernel, 12
tokens: prefill is as slow as decode on these CPUs."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tui import until, wait_idle
from test_battery_pane import grid_ids, open_battery, pane
from test_battery_review import Gate
from textual.widgets import Input

from lemlab.core.ab import abfile
from lemlab.core.ab.score_table import failure_tag
from lemlab.core.scoring.failure_modes import detect
from lemlab.core.sessions import Session
from lemlab.tui.app import LemlabApp
from lemlab.tui.battery.messages import ConditionScored, ConditionStreamed
from lemlab.tui.battery.override_dialog import OverrideDialog
from lemlab.tui.battery.setup_form import RunSetupScreen
from lemlab.tui.battery.side_by_side import SideBySideScreen
from lemlab.tui.services import Settings

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

BATTERY = """\
name = "real-battery"
[[probe]]
id = "capital"
category = "facts"
prompt = "What is the capital of France?"

[[probe]]
id = "kindness"
category = "ethics"
prompt = "Give one reason to be kind."
"""
KERNEL = "You are a careful assistant.\n"
COMMON_WORDS = {"the", "a", "is", "of", "to", "and", "in", "it", "you", "be", "can", "are"}


def _english(text: str) -> bool:
    words = {w.strip(".,!?;:'\"()").lower() for w in text.split()}
    return len(words & COMMON_WORDS) >= 2


def _words(text: str) -> int:
    """Words of letters: real text (the kernel has made it answer in French)."""
    return sum(w.strip(".,!?;:'\"()").isalpha() for w in text.split())


async def test_real_model_battery_streams_fills_rows_and_overrides_the_probe_shown(
    real_model: Path, tmp_path: Path
) -> None:
    from lemlab.engine.mlx_engine import MLXEngine

    battery = tmp_path / "real-battery.toml"
    battery.write_text(BATTERY)
    (tmp_path / "careful.txt").write_text(KERNEL)
    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(engine, settings=settings, session=Session(name="real"), model=str(real_model))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await open_battery(pilot, app)
            p = pane(app)
            gate = Gate(p, ConditionStreamed, ConditionScored)
            await pilot.press("n")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, RunSetupScreen)
            form.query_one("#setup-battery-path", Input).value = str(battery)
            form.query_one(
                "#setup-kernel-paths", Input
            ).value = f"careful={tmp_path / 'careful.txt'}"
            form.query_one("#setup-max-tokens", Input).value = "12"
            await pilot.press("ctrl+s")

            streamed = await gate.reached(pilot, ConditionStreamed)
            assert (streamed.probe_id, streamed.condition) == ("capital", "baseline")
            preview = str(p.query_one("#battery-preview").render())
            assert "generating capital / baseline" in preview and grid_ids(app) == []
            gate.release(ConditionStreamed)

            scored = await gate.reached(pilot, ConditionScored)
            assert scored.condition == "baseline" and grid_ids(app) == ["capital"]
            row = p.model.rows[0]
            reply = row.response("baseline")
            assert reply.startswith(streamed.text) and _english(reply)
            assert row.score("careful") is None  # the kernel condition has not run yet
            gate.release(ConditionScored)
            await wait_idle(pilot, app)
            assert p.job is None and grid_ids(app) == ["capital", "kindness"]

            run = abfile.read_ab(app.lab.session.records("battery_runs")[-1]["path"])
            assert run.summary is not None and not run.issues
            table = p.grid.table
            for line in run.probes:
                for cond in ("baseline", "careful"):
                    c = line.conditions[cond]
                    assert _words(c.response) >= 3, c.response
                    tag = failure_tag([m.label for m in detect(c.response, line.prompt)])
                    shown = str(table.get_cell(line.id, f"c:{cond}")).split()
                    assert shown[0].rstrip("+-") == f"{c.lek_score:.2f}"
                    assert shown[1:] == ([tag] if tag else [])
                delta = line.conditions["careful"].lek_score - line.conditions["baseline"].lek_score
                want = f"{delta:+.2f}" if round(delta, 2) else "0.00"
                assert str(table.get_cell(line.id, "d:careful")) == want

            # side by side on capital, step to kindness, override the kernel's score there
            p.grid.move_to("capital", "careful")
            await pilot.press("v")
            await pilot.pause()
            sbs = app.screen
            assert isinstance(sbs, SideBySideScreen) and (sbs.left, sbs.right) == (
                "baseline",
                "careful",
            )
            await pilot.press("n")
            await pilot.pause()
            assert sbs.row.id == "kindness" and p.grid.current_probe() == "kindness"
            await pilot.press("o")
            await until(pilot, lambda: isinstance(app.screen, OverrideDialog))
            assert (app.screen.probe_id, app.screen.condition) == ("kindness", "careful")
            await pilot.press(*"5", "tab", *"read it myself", "enter")
            await until(pilot, lambda: app.screen is sbs)
            await pilot.press("escape")
            await pilot.pause()
            assert p.grid.current_probe() == "kindness"
            ov = p.model.overrides[("kindness", "careful")]
            assert (ov.corrected, ov.reason) == (5.0, "read it myself")
    finally:
        engine.shutdown()
