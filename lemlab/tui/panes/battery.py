"""Battery tab: set up and run a probe battery on the app's engine (live progress, cancel,
resume), read the score table (sort, filter, summary with sign test and CI), drill into
responses side by side, override wrong scores, open / rescore / compare past runs, export.

The run itself is `lemlab ab`'s code path (lemlab.tui.battery.run_job); the table's logic is
lemlab.core.ab.score_table; overrides are lemlab.core.ab.overrides, kept in the session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from lemlab.core.ab import abfile
from lemlab.core.ab.overrides import Override, add_override, overrides_for_run, remove_override
from lemlab.core.ab.score_table import (
    NO_FAILURE,
    ScoreTable,
    Sort,
    compare_notes,
    merge_runs,
    table_from_run,
    view_csv,
    view_markdown,
)
from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.html import report as rh
from lemlab.core.html.sides import generated_now, override_notes, report_and_sides
from lemlab.core.safe_text import visible_line
from lemlab.core.sessions import Session, now_iso, save_session
from lemlab.tui.battery.messages import (
    ConditionScored,
    ConditionStreamed,
    ProbeScored,
    RunFailed,
    RunFinished,
    RunProgressed,
)
from lemlab.tui.battery.run_job import RunJob, RunRequest
from lemlab.tui.battery.table_view import ScoreGrid
from lemlab.tui.panes.base import LabPane, Verb
from lemlab.tui.screens.results import when_given, when_text

HINT = "n new run · l open a run file · F1 all keys"


def _b(key: str, action: str, desc: str, bid: str, tip: str, show: bool = True) -> Binding:
    return Binding(key, action, desc, id=f"battery.{bid}", tooltip=tip, show=show)


class BatteryPane(LabPane):
    TAB_ID = "battery"
    TITLE = "Battery"
    FOCUS = "#battery-table"
    DEFAULT_CSS = """
    BatteryPane #battery-status { height: 1; padding: 0 1; background: $surface; color: $text-muted; }
    BatteryPane.-running #battery-status { color: $accent; }
    BatteryPane #battery-notes { height: auto; max-height: 4; padding: 0 1; color: $warning; }
    """
    BINDINGS = [
        # F1 first: a narrow terminal's footer keeps its first keys and cuts the rest.
        _b("f1", "app.help", "Help", "help", "Show all keys and commands"),
        _b(
            "n",
            "new_run",
            "New run",
            "new_run",
            "Set up and start a battery run on the loaded model",
        ),
        _b(
            "escape",
            "cancel_run",
            "Cancel",
            "cancel",
            "Stop the run after the current token (resumable)",
        ),
        _b(
            "r",
            "resume_run",
            "Resume",
            "resume",
            "Continue this session's last unfinished run",
            False,
        ),
        _b(
            "s",
            "sort",
            "Sort",
            "sort",
            "Sort by the column under the cursor (again: reverse, then file order)",
        ),
        _b(
            "d",
            "sort_delta",
            "Sort Δ",
            "sort_delta",
            "Sort by this condition's delta vs the baseline",
        ),
        _b(
            "f",
            "filter_category",
            "Category",
            "filter_category",
            "Show one category (cycles; all at the end)",
        ),
        _b(
            "m",
            "filter_failure",
            "Failure",
            "filter_failure",
            "Show one failure mode (cycles)",
            False,
        ),
        _b(
            "v",
            "side_by_side",
            "Side by side",
            "side_by_side",
            "Compare two conditions of this probe",
        ),
        _b(
            "o",
            "override",
            "Override",
            "override",
            "Correct the score under the cursor (value + reason)",
        ),
        _b(
            "O",
            "remove_override",
            "Drop override",
            "remove_override",
            "Remove this cell's override",
            False,
        ),
        _b(
            "w",
            "toggle_overrides",
            "± overrides",
            "toggle_overrides",
            "Table and summary with or without overrides",
            False,
        ),
        _b(
            "l",
            "open_run",
            "Open",
            "open_run",
            "Open an A/B JSONL file (lemlab's or the research's)",
        ),
        _b(
            "R",
            "rescore",
            "Rescore",
            "rescore",
            "Rescore the open file in place with a chosen scorer",
            False,
        ),
        _b(
            "c",
            "compare",
            "Compare",
            "compare",
            "Compare the open run with another run file",
            False,
        ),
        _b(
            "e", "export('md')", "Export", "export_md", "Export the current view as Markdown", False
        ),
        _b("E", "export('csv')", "CSV", "export_csv", "Export the current view as CSV", False),
    ]

    def __init__(self) -> None:
        super().__init__(id="battery-pane")
        self.job: RunJob | None = None
        self.run_path: Path | None = None  # the A/B file shown (None in a comparison)
        self.scorer_id = "v2"
        self.title = ""
        self.last_request: RunRequest | None = None
        self.run_session: Session | None = None  # the session a running run reports to
        self.loaded_before: tuple[str, str | None] | None = None  # restored after the run
        self.runs: list[Any] = []  # the abfile.ABRun(s) shown: the export's header facts
        self.notes: list[str] = []  # said above the table and in the export (a comparison's)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run" and self.job is None:
            return False  # no run: Esc is not offered (the footer keeps room for the rest)
        return True

    def compose(self) -> ComposeResult:
        yield Static(HINT, id="battery-status", markup=False)
        notes = Static("", id="battery-notes", markup=False)
        notes.display = False  # shown when a comparison has something to say
        yield notes
        yield ScoreGrid()

    @property
    def grid(self) -> ScoreGrid:
        return self.query_one(ScoreGrid)

    @property
    def model(self) -> ScoreTable | None:
        return self.grid.model

    def status(self, text: str) -> None:
        # Quotes file names, categories and run errors: controls shown visibly, one line.
        self.query_one("#battery-status", Static).update(visible_line(text))

    def set_notes(self, notes: list[str]) -> None:
        self.notes = list(notes)
        box = self.query_one("#battery-notes", Static)
        box.update("\n".join(visible_line(f"⚠ {n}") for n in self.notes))
        box.display = bool(self.notes)

    def view_status(self) -> None:
        m = self.model
        if m is None:
            self.status(HINT)
            return
        filters = [
            f"category {m.category}" if m.category else "",
            f"failure {m.failure_mode}" if m.failure_mode else "",
        ]
        parts = [self.title, f"sort: {m.sort.label}", *[x for x in filters if x]]
        self.status(" · ".join(p for p in parts if p))

    # -- pane hooks ------------------------------------------------------------------------------
    def session_opened(self) -> None:
        """Show the session's latest run file, with its overrides."""
        from lemlab.tui.battery.run_job import RUNS_KIND

        if self.job is not None:
            return
        runs = [
            r for r in self.lab.session.records(RUNS_KIND) if Path(str(r.get("path", ""))).exists()
        ]
        if runs:
            self.open_run(Path(runs[-1]["path"]), quiet=True)
        else:
            self.run_path, self.grid.model, self.runs = None, None, []
            self.set_notes([])
            self.grid.table.clear(columns=True)
            self.grid.refresh_summary()
            self.view_status()

    def palette_verbs(self) -> list[Verb]:
        return [
            Verb(
                "Battery: new run…",
                "choose battery, conditions, scorer, sampler",
                self._show(self.action_new_run),
            ),
            Verb("Battery: cancel run", "stop after the current token", self.action_cancel_run),
            Verb(
                "Battery: resume run",
                "continue the last unfinished run",
                self._show(self.action_resume_run),
            ),
            Verb("Battery: open run file…", "load any A/B JSONL", self._show(self.action_open_run)),
            Verb("Battery: rescore file…", "rescore the open file in place", self.action_rescore),
            Verb("Battery: compare with run…", "run vs run columns", self.action_compare),
            Verb(
                "Battery: sort by delta", "this condition vs the baseline", self.action_sort_delta
            ),
            Verb("Battery: side by side", "two conditions of one probe", self.action_side_by_side),
            Verb(
                "Battery: override score…",
                "correct the score under the cursor",
                self.action_override,
            ),
            Verb(
                "Battery: toggle overrides",
                "summary with / without overrides",
                self.action_toggle_overrides,
            ),
            Verb(
                "Battery: export view as Markdown",
                "next to the run file",
                lambda: self.action_export("md"),
            ),
            Verb(
                "Battery: export view as CSV",
                "next to the run file",
                lambda: self.action_export("csv"),
            ),
            Verb(
                "Battery: export report (HTML)",
                "the whole run with charts, under exports/",
                self.export_html,
            ),
        ]

    def _show(self, then: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            self.app.action_show_tab(self.TAB_ID)  # type: ignore[attr-defined]
            then()

        return run

    # -- running ------------------------------------------------------------------------------------
    def action_new_run(self) -> None:
        from lemlab.tui.battery.setup_form import RunSetupScreen

        if self._busy():
            return
        last = self.last_request or self.recorded_request()
        sampler = last.sampler if last else self.lab.sampler
        self.app.push_screen(RunSetupScreen(sampler, last), when_given(self.start_run))

    def recorded_request(self) -> RunRequest | None:
        """The settings of this session's last run (the form starts from them after a restart)."""
        from lemlab.tui.battery.run_job import RUNS_KIND

        for rec in reversed(self.lab.session.records(RUNS_KIND)):
            try:
                return RunRequest.from_record(rec)
            except (KeyError, TypeError, ValueError):
                continue
        return None

    def reports_to(self, session: Session) -> bool:
        return self.job is not None and self.run_session is session

    def _busy(self) -> bool:
        if self.job is not None:
            self.notify("a battery run is in progress: Esc cancels it", severity="warning")
        return self.job is not None

    def start_run(
        self, req: RunRequest, *, resume: Path | None = None, model: str | None = None
    ) -> bool:
        """Prepare (every input error is one line here) and start the worker. True if started."""
        from lemlab.tui.battery.run_job import add_run_record, run_output_path, update_run_record

        if self._busy():
            return False
        model = model or (self.lab.loaded.model_path if self.lab.loaded else None)
        if model is None:
            self.notify(
                "load a model first (Models tab): the run uses the chat's engine", severity="error"
            )
            return False
        s = self.lab.session
        output = resume or run_output_path(self.lab.sessions_dir, s.name, req.battery)
        try:
            job = RunJob(self.lab.engine, req, model, output, resume=resume is not None)
        except (LemlabError, OSError) as exc:
            self.notify(str(exc).splitlines()[0], severity="error", timeout=10)
            return False
        if job.already_complete:
            job.release()
            update_run_record(s, output, status="done")
            self.lab.save()
            self.notify(f"{output.name} is already complete")
            self.open_run(output, quiet=True)
            return False
        for note in job.notes:
            self.notify(note, severity="warning")
        if resume is None:
            add_run_record(s, req, output, model, job.total)
        update_run_record(s, output, status="running")
        self.lab.save()
        self.last_request, self.job, self.scorer_id = req, job, req.scorer
        self.run_session = s
        info = self.lab.loaded
        self.loaded_before = (info.model_path, info.adapter_path) if info else None
        self._show_live(job)
        self.add_class("-running")
        self.refresh_bindings()
        self._drive(job)
        return True

    def _show_live(self, job: RunJob) -> None:
        lines = [p.to_dict() for p in abfile.read_ab(job.output).probes] if job.done else []
        names = job.setup.plan.names
        self.run_path = job.output
        self.runs = []
        self.set_notes([])
        self.title = f"{job.output.name} (running)"
        model = ScoreTable.from_lines(
            lines,
            conditions=names,
            baseline=names[0],
            overrides=overrides_for_run(self.lab.session, job.output),
        )
        self.grid.show(model)
        self.status(f"starting {job.output.name}: {job.done}/{job.total} probes done")

    @work(thread=True, exclusive=True, group="battery-run")
    def _drive(self, job: RunJob) -> None:
        # This thread only iterates the runner; the engine thread does the MLX work.
        job.drive(self.post_message)

    def action_cancel_run(self) -> None:
        if self.job is None:
            return
        self.job.cancel()
        self.status("cancelling: stopping after the current token…")

    def action_resume_run(self) -> None:
        from lemlab.tui.battery.run_job import resumable_run

        rec = resumable_run(self.lab.session)
        if rec is None:
            self.notify("no unfinished battery run in this session")
            return
        try:
            req = RunRequest.from_record(rec)
        except (KeyError, TypeError, ValueError) as exc:
            self.notify(f"cannot resume: damaged run record ({exc})", severity="error")
            return
        self.start_run(req, resume=Path(rec["path"]), model=str(rec.get("model") or "") or None)

    def on_unmount(self) -> None:
        if self.job is not None:  # leaving the app: stop at the next token, lines stay on disk
            self.job.cancel()

    def _run_ended(self, path: str, **changes: object) -> None:
        """Record the outcome in the run's own session (the user may have opened another one),
        and put back the model the chat had if the run loaded an adapter."""
        from lemlab.tui.battery.run_job import update_run_record

        self.job = None
        self.grid.end_live()
        self.remove_class("-running")
        self.refresh_bindings()
        session = self.run_session or self.lab.session
        update_run_record(session, path, **changes)
        if session is self.lab.session:
            self.lab.save()
        else:
            try:
                save_session(session, self.lab.sessions_dir)
            except OSError as exc:
                self.notify(f"could not save session {session.name}: {exc}", severity="error")
            session.release()  # the app kept its lock for this run only (app.open_session)
        info, before = self.lab.loaded, self.loaded_before
        if before is not None and (info is None or (info.model_path, info.adapter_path) != before):
            self.app.load_model(*before)  # type: ignore[attr-defined]
        self.app.refresh_status()  # type: ignore[attr-defined]

    @on(ProbeScored)
    def _probe_scored(self, msg: ProbeScored) -> None:
        if self.model is not None:
            self.model.add_line(msg.line)
            self.grid.refresh_rows()

    @on(ConditionScored)
    def _condition_scored(self, msg: ConditionScored) -> None:
        # A row fills cell by cell: on a slow model one probe's conditions take minutes.
        if self.model is not None and self.job is not None:
            self.model.add_line(msg.line)
            self.grid.refresh_rows()

    @on(ConditionStreamed)
    def _condition_streamed(self, msg: ConditionStreamed) -> None:
        if self.job is not None:
            self.grid.show_live(msg.probe_id, msg.condition, msg.text, msg.tokens, msg.tokens_per_s)

    @on(RunProgressed)
    def _run_progressed(self, msg: RunProgressed) -> None:
        self.status(f"{self.run_path.name if self.run_path else ''} · {msg.text}")

    @on(RunFinished)
    def _run_finished(self, msg: RunFinished) -> None:
        status = "cancelled" if msg.cancelled else "done"
        self._run_ended(msg.path, status=status, probes_done=msg.done, finished=now_iso())
        self.open_run(Path(msg.path), quiet=True)
        tail = "r resumes it" if msg.cancelled else "summary written"
        self.notify(f"battery run {status}: {msg.done}/{msg.total} probes; {tail}")

    @on(RunFailed)
    def _run_failed(self, msg: RunFailed) -> None:
        self._run_ended(msg.path, status="failed", error=msg.error)
        self.status(f"run failed: {msg.error} (r resumes after a fix)")
        self.notify(f"battery run failed: {msg.error}", severity="error", timeout=10)

    # -- opening, rescoring, comparing ---------------------------------------------------------------
    def action_open_run(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        self.app.push_screen(
            TextPrompt("A/B JSONL file to open"),
            when_text(lambda p: self.open_run(Path(p).expanduser())),
        )

    def open_run(self, path: Path, *, quiet: bool = False) -> bool:
        if self.job is not None and path != self.job.output:
            self._busy()
            return False
        try:
            run = abfile.read_ab(path)
        except LemlabError as exc:
            self.notify(str(exc).splitlines()[0], severity="error")
            return False
        if not run.probes:
            self.notify(f"{path}: no probe lines", severity="error")
            return False
        model = table_from_run(run, overrides_for_run(self.lab.session, path))
        self.runs = [run]
        self.set_notes([])
        old = self.model
        if old is not None and old.conditions == model.conditions:
            model.sort, model.with_overrides = old.sort, old.with_overrides
        self.run_path, self.scorer_id = path, run.scorer
        complete = "" if run.summary is not None else ", no summary yet"
        self.title = f"{path.name} ({len(run.probes)} probes, scorer {run.scorer}{complete})"
        self.grid.show(model)
        self.view_status()
        if run.issues and not quiet:
            self.notify(
                f"{len(run.issues)} bad lines skipped; first: {run.issues[0]}", severity="warning"
            )
        return True

    def action_rescore(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        if self.run_path is None:
            self.notify("open a run file first (l)")
            return
        if self._busy():
            return
        self.app.push_screen(
            TextPrompt("Rescore in place with scorer (v2, v2-distill, v0)", "v2"),
            when_text(self.rescore),
        )

    def rescore(self, scorer_id: str) -> bool:
        path = self.run_path
        if path is None:
            return False
        try:
            run = abfile.read_ab(path)
            abfile.write_ab(path, abfile.rescore_run(run, scorer_id))
        except (LemlabError, OSError) as exc:
            self.notify(f"rescore failed: {str(exc).splitlines()[0]}", severity="error")
            return False
        self.open_run(path, quiet=True)
        self.notify(f"rescored {path.name} with {scorer_id}; overrides keep their own values")
        return True

    def action_compare(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        if self.run_path is None:
            self.notify("open a run file first (l), then compare it with another")
            return
        self.app.push_screen(
            TextPrompt(f"Compare {self.run_path.name} with which A/B file?"),
            when_text(lambda p: self.compare(Path(p).expanduser())),
        )

    def compare(self, other: Path) -> bool:
        if self.run_path is None or self._busy():
            return False
        try:
            a, b = abfile.read_ab(self.run_path), abfile.read_ab(other)
        except LemlabError as exc:
            self.notify(str(exc).splitlines()[0], severity="error")
            return False
        lines, names, refs = merge_runs(
            [p.to_dict() for p in a.probes], [p.to_dict() for p in b.probes]
        )
        if not lines or not names:
            self.notify("these runs share no probes or no conditions", severity="error")
            return False
        self.title = f"A = {self.run_path.name} vs B = {other.name} ({len(lines)} shared probes)"
        self.run_path = None  # a comparison is no file: overrides and rescoring are off
        self.runs = [a, b]
        self.grid.show(
            ScoreTable.from_lines(lines, conditions=names, baseline=names[0], references=refs)
        )
        self.view_status()
        try:
            notes = compare_notes(a, b)
        except Exception as exc:  # noqa: BLE001 - the comparison still shows; say what failed
            notes = [f"could not compare the runs' settings: {exc}"]
        self.set_notes(notes)
        if notes:
            self.notify(
                f"{len(notes)} differences between the runs: listed above the table",
                severity="warning",
                timeout=10,
            )
        return True

    # -- table: sorting, filtering, drill-down --------------------------------------------------------
    def action_sort(self) -> None:
        m = self.model
        if m is None:
            return
        col = self.grid.current_condition()
        if col is not None and self.grid.on_delta_column():
            self.action_sort_delta()  # s on a Δ column sorts by that delta
            return
        s = m.sort
        if col is None:
            m.sort = Sort()
        elif s.column == col and not s.by_delta:
            m.sort = Sort(col, False, False) if s.descending else Sort()
        else:
            m.sort = Sort(col, False, True)
        self._redraw()

    def action_sort_delta(self) -> None:
        m = self.model
        if m is None:
            return
        col = m.delta_column(self.grid.current_condition())
        if col is None:
            self.notify("no condition besides the baseline to take a delta of")
            return
        same = m.sort.column == col and m.sort.by_delta
        m.sort = Sort(col, True, not m.sort.descending if same else True)
        self._redraw()

    def _cycle(self, options: list[str], current: str | None) -> str | None:
        seq: list[str | None] = [*options, None]
        return seq[(seq.index(current) + 1) % len(seq)] if current in seq else seq[0]

    def action_filter_category(self) -> None:
        if self.model is not None:
            self.model.category = self._cycle(self.model.categories(), self.model.category)
            self._redraw()

    def action_filter_failure(self) -> None:
        if self.model is not None:
            self.model.failure_mode = self._cycle(
                self.model.failure_modes(), self.model.failure_mode
            )
            if self.model.failure_mode == NO_FAILURE:
                self.notify("showing probes where no failure mode fired")
            self._redraw()

    def _redraw(self) -> None:
        self.grid.refresh_rows()
        self.view_status()

    @on(DataTable.CellSelected, "#battery-table")
    def _cell_selected(self) -> None:
        self.action_side_by_side()

    def action_side_by_side(self) -> None:
        from lemlab.tui.battery.side_by_side import SideBySideScreen

        m, row = self.model, self.grid.current_row()
        if m is None or row is None or len(m.conditions) < 1:
            return
        cond = self.grid.current_condition()
        right = cond if cond and cond != m.baseline else m.delta_column(None) or m.baseline
        rows = list(self.grid.shown)
        on_override = self.override_cell if self.run_path is not None else None
        self.app.push_screen(
            SideBySideScreen(
                m,
                rows,
                rows.index(row),
                m.baseline,
                right,
                self.scorer_id,
                on_show=self.grid.move_to,
                on_override=on_override,
            )
        )

    # -- overrides ----------------------------------------------------------------------------------
    def _cell(self) -> tuple[str, str, float] | None:
        row, cond = self.grid.current_row(), self.grid.current_condition()
        if self.run_path is None or row is None or cond is None:
            self.notify("move to a score cell of an open run file to override it")
            return None
        original = row.score(cond)
        if original is None:
            self.notify("this cell has no score")
            return None
        return row.id, cond, original

    def action_override(self) -> None:
        cell = self._cell()
        if cell is not None:
            self.override_cell(cell[0], cell[1])

    def override_cell(
        self, probe_id: str, cond: str, then: Callable[[], None] | None = None
    ) -> None:
        """Ask for a corrected score of exactly this cell (the table's cursor or the probe shown
        side by side), save it, then call `then`."""
        from lemlab.tui.battery.override_dialog import OverrideDialog

        m, path = self.model, self.run_path
        row = next((r for r in m.rows if r.id == probe_id), None) if m is not None else None
        original = row.score(cond) if row is not None else None
        if m is None or path is None or original is None:
            self.notify("no score to override there", severity="warning")
            return
        existing = m.overrides.get((probe_id, cond))
        dialog = OverrideDialog(
            path, probe_id, cond, original, existing.corrected if existing else None
        )

        def saved(ov: object) -> None:
            if ov:
                self.record_override(ov)
            if then is not None:
                then()

        self.app.push_screen(dialog, saved)

    def record_override(self, override: object) -> None:
        assert isinstance(override, Override)
        add_override(self.lab.session, override)
        self._overrides_changed(
            f"override saved: {override.probe_id} / {override.condition} = {override.corrected:.2f}"
        )

    def action_remove_override(self) -> None:
        cell = self._cell()
        if cell is None or self.run_path is None:
            return
        if remove_override(self.lab.session, self.run_path, cell[0], cell[1]):
            self._overrides_changed(f"override removed: {cell[0]} / {cell[1]}")

    def _overrides_changed(self, note: str) -> None:
        error = self.lab.save()
        if self.model is not None and self.run_path is not None:
            self.model.overrides = overrides_for_run(self.lab.session, self.run_path)
        self._redraw()
        self.notify(error or note, severity="error" if error else "information")

    def action_toggle_overrides(self) -> None:
        if self.model is not None:
            self.model.with_overrides = not self.model.with_overrides
            self._redraw()

    # -- export -----------------------------------------------------------------------------------
    def action_export(self, kind: str) -> None:
        self.export(kind)

    def export(self, kind: str) -> Path | None:
        m = self.model
        if m is None:
            self.notify("nothing to export: run a battery or open a run file")
            return None
        base = (
            self.run_path or self.lab.sessions_dir / f"{self.lab.session.name}.runs" / "comparison"
        )
        out = base.with_name(f"{base.stem}.view.{kind}")
        text = (
            view_markdown(m, self.title, self.scorer_id, runs=self.runs, notes=self.notes)
            if kind == "md"
            else view_csv(m)
        )
        try:
            write_text_atomic(out, text)
        except OSError as exc:
            self.notify(f"export failed: {exc.strerror or exc}", severity="error")
            return None
        self.notify(f"exported {out}")
        return out

    def export_html(self) -> Path | None:
        """The open run (or the comparison shown) as `lemlab report --format html` draws it, with
        this session's overrides, saved as exports/<session>/<run>.report.html. The view is read
        here; the page is drawn in a worker (a 500-probe run takes seconds). Returns the path it goes to."""
        from lemlab.tui.chat.actions import exports_dir

        m, path = self.model, self.run_path
        if m is None or (path is None and len(self.runs) != 2):
            self.notify("nothing to export: run a battery or open a run file")
            return None
        if path is not None:
            a, b, cond = None, path, None
            notes, stem = override_notes(self.lab.session, path), path.stem
        else:  # A is the reference, as in the table: `lemlab report B --vs A:cond`
            a, b = self.runs
            cond = (self.grid.current_condition() or m.baseline).partition(":")[2] or None
            notes, stem = {}, f"{Path(a.path).stem}-vs-{Path(b.path).stem}"  # no overrides here
        out = exports_dir() / self.lab.session.name / f"{stem}.report.html"
        self._write_html(out, a, b, cond, notes)
        return out

    @work(thread=True, group="battery-html")
    def _write_html(
        self, out: Path, old: Any, new: Any, cond: str | None, notes: dict[Any, Any]
    ) -> None:
        try:
            if isinstance(new, Path):  # re-read: a live run's file has grown since it was shown
                new = abfile.read_ab_run(new)
            report, sides = report_and_sides(new, old, cond)
            write_text_atomic(
                out, rh.ab_report_html(report, rh.HtmlContext(sides, notes, generated_now()))
            )
        except Exception as exc:  # noqa: BLE001 - one line; a worker's error would end the app
            self.app.call_from_thread(
                self.notify,
                f"report export failed: {(str(exc) or type(exc).__name__).splitlines()[0]}",
                severity="error",
            )
            return
        self.app.call_from_thread(self.notify, f"report written: {out}")


PANE = BatteryPane
