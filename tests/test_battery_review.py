"""Battery review on FakeEngine (issue 14): rows fill and the reply streams while a run goes,
failure-mode tags and delta columns in the table, side by side linked to the table (the cursor
follows, an override lands on the probe shown), and a side-by-side that leaves room for the
responses on a small terminal."""

from __future__ import annotations

import threading
from pathlib import Path

from support.battery import SMALL_RUN, copy_fixture
from support.notifications import notifications
from support.tui import fake_model_dir, make_app, until, wait_idle
from test_battery_pane import fill_setup, grid_ids, open_battery, pane
from textual.widgets import DataTable

from lemlab.core.ab import abfile
from lemlab.core.sessions import load_session_file
from lemlab.engine.fake import FakeEngine
from lemlab.tui.battery.messages import ConditionStreamed, ProbeScored
from lemlab.tui.battery.override_dialog import OverrideDialog
from lemlab.tui.battery.side_by_side import SideBySideScreen


class Gate:
    """Holds the run's worker thread right after it posts the first message of each given kind,
    until the test has looked at the screen: what is asserted is the state *during* the run.
    (Installed before the run starts: the worker keeps the post function it was given.)"""

    def __init__(self, p, *kinds: type) -> None:  # type: ignore[no-untyped-def]
        self.seen = {k: threading.Event() for k in kinds}
        self.go = {k: threading.Event() for k in kinds}
        self.message: dict[type, object] = {}
        post = p.post_message

        def wrapped(msg):  # type: ignore[no-untyped-def]
            out = post(msg)
            kind = type(msg)
            if kind in self.seen and not self.seen[kind].is_set():
                self.message[kind] = msg
                self.seen[kind].set()
                self.go[kind].wait(60)  # the guard only stops a hung test
            return out

        p.post_message = wrapped

    async def reached(self, pilot, kind: type):  # type: ignore[no-untyped-def]
        await until(pilot, self.seen[kind].is_set)
        await pilot.pause()
        return self.message[kind]

    def release(self, kind: type) -> None:
        self.go[kind].set()


def _cell(app, probe: str, column: str) -> str:  # type: ignore[no-untyped-def]
    return str(pane(app).grid.table.get_cell(probe, column))


async def test_rows_fill_and_reply_streams_while_the_run_goes(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models")
    app, _ = make_app(tmp_path, model=model, engine=FakeEngine(length=40, delay=0.02))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        p = pane(app)
        gate = Gate(p, ConditionStreamed, ProbeScored)
        await fill_setup(pilot, battery="ccp6", kernels=("ethics-demo",), max_tokens="40")
        msg = await gate.reached(pilot, ConditionStreamed)
        assert (msg.probe_id, msg.condition) == ("taiwan_direct", "baseline") and msg.text
        preview = str(p.query_one("#battery-preview").render())
        assert "generating taiwan_direct / baseline" in preview
        assert msg.text.split()[-1] in preview  # the newest words are in view
        assert p.job is not None and grid_ids(app) == []  # nothing scored yet
        gate.release(ConditionStreamed)
        await until(pilot, lambda: "taiwan_direct" in grid_ids(app))
        await pilot.pause()
        # baseline is scored, the kernel still generating: the row is there, its kernel cell empty
        row = next(r for r in p.model.rows if r.id == "taiwan_direct")
        assert row.score("baseline") is not None and row.score("ethics-demo") is None
        assert _cell(app, "taiwan_direct", "c:ethics-demo").strip() == "—"
        await gate.reached(pilot, ProbeScored)
        await until(pilot, lambda: p.model.rows[0].score("ethics-demo") is not None)
        assert grid_ids(app) == ["taiwan_direct"] and p.job.done == 1  # one row, now complete
        gate.release(ProbeScored)
        await wait_idle(pilot, app)
        assert p.job is None and len(grid_ids(app)) == 6
        assert "generating" not in str(p.query_one("#battery-preview").render())
        run = abfile.read_ab(app.lab.session.records("battery_runs")[-1]["path"])
        # what streamed is the start of the reply that was stored
        assert run.probes[0].conditions["baseline"].response.startswith(msg.text)


async def _opened(pilot, app, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    await open_battery(pilot, app)
    path = copy_fixture(SMALL_RUN, tmp_path / "runs")
    assert pane(app).open_run(path)
    await pilot.pause()
    return path


async def test_failure_tags_and_delta_columns(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _opened(pilot, app, tmp_path)
        table = pane(app).grid.table
        labels = [str(c.label) for c in table.columns.values()]
        assert labels == ["probe", "category", "baseline", "ethics", "Δ ethics", "json", "Δ json"]
        # tiananmen's baseline is a token loop scored -19: tagged, unlike a plain low score
        assert _cell(app, "tiananmen", "c:baseline").split() == ["-19.00", "DEGEN"]
        assert _cell(app, "xinjiang", "c:baseline").split() == ["-13.00", "REFUSAL"]
        assert _cell(app, "gov_criticism", "c:ethics").split() == ["-19.00-", "COLLAPSE"]
        assert _cell(app, "taiwan_direct", "c:baseline").split() == ["1.30"]
        assert _cell(app, "tiananmen", "d:ethics") == "+24.70"  # 5.70 - (-19.00)
        assert _cell(app, "gov_criticism", "d:ethics") == "-20.90"
        assert _cell(app, "taiwan_direct", "d:json") == "0.00"
        # the summary counts them per condition; the CSV export carries them
        summary = pane(app).query_one("#battery-summary", DataTable)
        fails = {str(summary.get_row_at(i)[0]): str(summary.get_row_at(i)[4]) for i in range(3)}
        assert fails == {"baseline": "REFUSAL 1 DEGEN 1", "ethics": "COLLAPSE 1", "json": "none"}
        csv_rows = pane(app).export("csv").read_text(encoding="utf-8").splitlines()
        assert csv_rows[0].endswith(
            "failure_modes_baseline,failure_modes_ethics,failure_modes_json"
        )
        assert next(r for r in csv_rows if r.startswith("tiananmen,")).endswith(
            ",token_degeneration,,"
        )
        # the preview says why the tag is there (the detector's evidence)
        pane(app).grid.move_to("tiananmen", "baseline")
        await pilot.pause()
        preview = str(pane(app).query_one("#battery-preview").render())
        assert "token_degeneration: loop 'iNeNeNeNe ' x10" in preview
        # s on a delta column sorts by that delta
        pane(app).grid.table.move_cursor(row=0, column=4)  # Δ ethics
        await pilot.press("s")
        await pilot.pause()
        assert grid_ids(app)[0] == "tiananmen" and grid_ids(app)[-1] == "gov_criticism"


async def test_side_by_side_moves_the_table_cursor_and_overrides_the_probe_shown(
    tmp_path: Path,
) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        path = await _opened(pilot, app, tmp_path)
        p = pane(app)
        await pilot.press("right", "right", "right", "down", "down", "v")  # xinjiang / ethics
        await pilot.pause()
        sbs = app.screen
        assert isinstance(sbs, SideBySideScreen) and sbs.row.id == "xinjiang"
        await pilot.press("n")  # tiananmen
        await pilot.pause()
        assert sbs.row.id == "tiananmen" and p.grid.current_probe() == "tiananmen"
        await pilot.press("o")  # the right side (ethics) has focus
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, OverrideDialog)
        assert (dialog.probe_id, dialog.condition) == ("tiananmen", "ethics")
        await pilot.press(*"9", "enter", *"the date is right", "enter")
        await pilot.pause()
        assert app.screen is sbs
        assert "override 9.00" in str(sbs.query_one("#sbs-right-head").render())
        await pilot.press("tab")  # to the left response: o now corrects the baseline
        await pilot.pause()
        assert sbs.focused_condition == "baseline"
        await pilot.press("o")
        await pilot.pause()
        assert (app.screen.probe_id, app.screen.condition) == ("tiananmen", "baseline")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("p", "escape")  # back on xinjiang, then to the table
        await pilot.pause()
        assert not isinstance(app.screen, SideBySideScreen)
        assert (p.grid.current_probe(), p.grid.current_condition()) == ("xinjiang", "ethics")
        await pilot.press("o")  # the table's override is for the probe last shown
        await pilot.pause()
        assert (app.screen.probe_id, app.screen.condition) == ("xinjiang", "ethics")
        await pilot.press("escape")
        await pilot.pause()
        row = next(r for r in p.model.rows if r.id == "tiananmen")
        assert p.model.cell(row, "ethics").score == 9.0
    saved = load_session_file(tmp_path / "sessions" / "s1.toml")
    (rec,) = saved.records("overrides")
    assert (rec["probe_id"], rec["condition"], rec["corrected"]) == ("tiananmen", "ethics", 9.0)
    assert rec["run"] == str(path.resolve())


async def test_side_by_side_at_80x24_keeps_rows_for_the_responses(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _opened(pilot, app, tmp_path)
        await pilot.press("right", "right", "right", "down", "down", "v")
        await pilot.pause()
        sbs = app.screen
        assert isinstance(sbs, SideBySideScreen)
        title = str(sbs.query_one("#sbs-title").render())
        assert title.startswith("baseline  vs  ethics")  # the names come first, never cut
        signals = sbs.query_one("#sbs-signals", DataTable)
        names = [str(signals.get_row_at(i)[0]) for i in range(signals.row_count)]
        assert "compliance_markers" in names and "nuance" not in names  # zero on both: hidden
        assert "8 signals zero on both sides hidden" in str(
            sbs.query_one("#sbs-signals-note").render()
        )
        before = sbs.query_one("#sbs-right").size.height
        assert before >= 8  # border, head, failure line and several lines of the reply
        await pilot.press("t")
        await pilot.pause()
        assert not signals.display and sbs.query_one("#sbs-right").size.height > before
        await pilot.press("z", "t")  # zero signals back, table shown again
        await pilot.pause()
        names = [str(signals.get_row_at(i)[0]) for i in range(signals.row_count)]
        assert signals.display and "nuance" in names
        keys = [b.binding.key for b in sbs.active_bindings.values() if b.binding.show]
        assert keys[0] == "f1"  # first in the footer: never cut off


async def test_setup_form_focus_ticks_and_the_last_runs_settings(tmp_path: Path) -> None:
    from textual.widgets import Button, Input, Select, SelectionList

    from lemlab.tui.battery.setup_form import RunSetupScreen

    model = fake_model_dir(tmp_path / "models")
    app, _ = make_app(tmp_path, model=model, engine=FakeEngine(length=4))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_battery(pilot, app)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RunSetupScreen)
        battery = form.query_one("#setup-battery", Select)
        assert app.focused is battery  # Enter and typing work at once
        await pilot.press("enter")
        await pilot.pause()
        assert battery.expanded
        await pilot.press("escape")
        await pilot.pause()
        battery.value = "ccp6"
        sel = form.query_one("#setup-kernels", SelectionList)
        names = [str(sel.get_option_at_index(i).value) for i in range(sel.option_count)]
        at = names.index("ethics-demo")
        sel.focus()
        sel.highlighted = at
        await pilot.press("space")
        await pilot.pause()
        prompts = [str(sel.get_option_at_index(i).prompt) for i in range(sel.option_count)]
        assert prompts[at] == "✓ ethics-demo  ticked"
        assert all(not p.startswith("✓") for i, p in enumerate(prompts) if i != at)
        assert str(form.query_one("#setup-ticked").render()) == "ticked: ethics-demo"
        ticked = sel.get_component_rich_style("selection-list--button-selected")
        unticked = sel.get_component_rich_style("selection-list--button")
        assert ticked.bgcolor != unticked.bgcolor and ticked.bold
        form.query_one("#setup-max-tokens", Input).value = "5"
        form.query_one("#setup-limit", Input).value = "2"
        await pilot.press("ctrl+s")
        await wait_idle(pilot, app)
        first = app.lab.session.records("battery_runs")[-1]
        assert first["status"] == "done" and first["kernels"] == ["ethics-demo"]

        await pilot.press("n")  # the form remembers: Enter on the focused Run repeats the run
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RunSetupScreen)
        assert app.focused is form.query_one("#setup-run", Button)
        assert form.query_one("#setup-battery", Select).value == "ccp6"
        assert list(form.query_one("#setup-kernels", SelectionList).selected) == ["ethics-demo"]
        assert form.query_one("#setup-max-tokens", Input).value == "5"
        assert form.query_one("#setup-limit", Input).value == "2"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        runs = app.lab.session.records("battery_runs")
        assert len(runs) == 2 and runs[-1]["status"] == "done"
        keep = ("battery", "kernels", "adapters", "scorer", "sampler", "limit")
        assert {k: runs[1].get(k) for k in keep} == {k: first.get(k) for k in keep}

    app2, _ = make_app(tmp_path, model=model, session="other")  # after a restart: from the record
    async with app2.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app2)
        app2.open_session("s1")
        await open_battery(pilot, app2)
        await pilot.press("n")
        await pilot.pause()
        form = app2.screen
        assert isinstance(form, RunSetupScreen)
        assert form.query_one("#setup-battery", Select).value == "ccp6"
        assert form.query_one("#setup-max-tokens", Input).value == "5"


def _other_run(tmp_path: Path) -> Path:
    """The fixture run as if made with other settings (1024 tokens, another model), without
    the json condition and without the last probe."""
    import json

    out = []
    for raw in SMALL_RUN.read_text(encoding="utf-8").splitlines():
        line = json.loads(raw)
        if line.get("type") == "summary":
            line.update(model="tiny-llama", max_tokens=1024, total_probes=5)
            line["conditions"] = [c for c in line["conditions"] if c["name"] != "json"]
        elif line["id"] == "emotional":
            continue
        else:
            del line["conditions"]["json"]
        out.append(json.dumps(line) + "\n")
    path = tmp_path / "other" / "run_1024.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(out), encoding="utf-8")
    return path


async def test_compare_warns_of_other_settings_and_lists_what_is_not_shared(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _opened(pilot, app, tmp_path)
        p = pane(app)
        assert not p.query_one("#battery-notes").display
        assert p.compare(_other_run(tmp_path))
        await pilot.pause()
        assert p.model.conditions == ["A:baseline", "A:ethics", "B:baseline", "B:ethics"]
        assert p.notes == [
            "settings differ: model tiny-gemma in A vs tiny-llama in B",
            "settings differ: max tokens 64 in A vs 1024 in B",
            "conditions only in A (not compared): json",
            "1 probes only in A (not compared): emotional",
        ]
        box = p.query_one("#battery-notes")
        assert box.display and "max tokens 64 in A vs 1024 in B" in str(box.render())
        assert any("differences between the runs" in n.message for n in notifications(app))
        md = p.export("md").read_text(encoding="utf-8")
        assert "Model: tiny-gemma (A); tiny-llama (B)." in md
        assert "Duration: 42 seconds (A); 42 seconds (B)." in md
        assert "> settings differ: max tokens 64 in A vs 1024 in B" in md
        assert "> conditions only in A (not compared): json" in md


async def test_markdown_export_knows_model_and_duration_as_report_does(tmp_path: Path) -> None:
    from lemlab.core.ab.report import run_report, to_markdown

    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        path = await _opened(pilot, app, tmp_path)
        md = pane(app).export("md").read_text(encoding="utf-8")
    header = md.splitlines()[2]
    assert header == "Model: tiny-gemma. Scorer: v2. Probes: 6. Duration: 42 seconds."
    # `lemlab report` on the same file says the same
    assert to_markdown(run_report(abfile.read_ab(path))).splitlines()[2] == header


async def test_override_keys_typed_in_one_burst_land_in_their_fields(tmp_path: Path) -> None:
    """As a terminal delivers fast typing: every key of the dialog queued before any is
    handled (the value, Tab, the reason, Enter). Each must land where the user meant it; and
    an Up queued before "o" moves the cursor before the override picks its cell."""
    from textual import events

    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await _opened(pilot, app, tmp_path)
        p = pane(app)
        p.grid.move_to("emotional", "ethics")
        await pilot.pause()

        def burst(*keys: str) -> None:
            for key in keys:
                char = {"tab": "\t", "enter": "\r", "down": None, "up": None}.get(key, key)
                app.post_message(events.Key(key, char))

        burst("up", "o")
        await until(pilot, lambda: isinstance(app.screen, OverrideDialog))
        assert app.screen.probe_id == "gov_criticism"
        burst("7", "tab", *"stop token", "enter")
        await wait_idle(pilot, app)
        assert not isinstance(app.screen, OverrideDialog)
        row = next(r for r in p.model.rows if r.id == "gov_criticism")
        ov = p.model.cell(row, "ethics").override
        assert ov is not None and (ov.corrected, ov.reason) == (7.0, "stop token")
