"""Training tab: start, attach to, follow and stop LoRA runs; loss curves with zoom, the run's
figures, its checkpoints, score vs checkpoint (a battery run on every checkpoint) and staged
curricula (training/curriculum_flow.py: stages followed here, a confirmed fuse between them).

Parsing, launching and alignment live in the core (training_events, train_runner,
checkpoint_scores); this module only wires them to widgets. A Textual timer polls the followed
file for new complete lines.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from lemlab.core.atomic import write_text_atomic
from lemlab.core.distill.output import DistillRecorder
from lemlab.core.distill.prepare import prepare_distill
from lemlab.core.distill.runner import DistillDone, DistillRunner, SampleScored
from lemlab.core.errors import LemlabError
from lemlab.core.html.report import training_report_html, training_series
from lemlab.core.html.sides import generated_now
from lemlab.core.paths import get_paths
from lemlab.core.safe_text import visible, visible_line
from lemlab.core.training.checkpoint_scores import CheckpointComparison, align_scores, compare
from lemlab.core.training.config import TrainingConfig
from lemlab.core.training.resume import plan_continue
from lemlab.core.training.runs import archive_previous_run, list_runs
from lemlab.core.training.summary import compact_lines, summary_lines
from lemlab.engine.train_runner import start_training, trainer_check
from lemlab.tui.panes.base import LabPane, Verb
from lemlab.tui.screens.results import when_given
from lemlab.tui.training.checkpoint_scoring import (
    CheckpointScored,
    CheckpointScoring,
    ScoreRequest,
    ScoringDone,
    ScoringEvent,
    ScoringProgress,
    checkpoints_to_score,
    prepare_scoring,
)
from lemlab.tui.training.checkpoint_table import TITLE as CHECKPOINTS_TITLE
from lemlab.tui.training.checkpoint_table import CheckpointTable
from lemlab.tui.training.curriculum_flow import CurriculumFlow
from lemlab.tui.training.distill_flow import DistillRequest
from lemlab.tui.training.distill_flow import default_request as default_distill_request
from lemlab.tui.training.follow import FollowedRun
from lemlab.tui.training.loss_plot import LossPlot
from lemlab.tui.widgets.distill_progress import DistillProgress

HINT = (
    "no run yet: n starts one; r picks a run (runs folder and session); a attaches to a file; "
    "c runs a curriculum; d self-distills data"
)
NARROW_WIDTH = 110  # below this many columns: the compact layout
REDRAW_SECONDS = 1.0  # a live run's clock ("no event for 40s") ticks even when no event comes
RECORD_KIND = "training_runs"


class TrainingPane(LabPane):
    TAB_ID = "training"
    TITLE = "Training"
    FOCUS = "#training-checkpoints"
    POLL_SECONDS = 0.25
    DEFAULT_CSS = """
    #training-head { height: 1; padding: 0 1; background: $surface; color: $text-muted; }
    #training-curriculum { height: 1; padding: 0 1; color: $secondary; display: none; }
    TrainingPane.-curriculum #training-curriculum { display: block; }
    #training-figures { height: auto; padding: 0 1; }
    #training-body { height: 1fr; }
    #training-left { width: 1fr; }
    #training-right { width: 62; }
    /* Small terminals (80x24): figures in three lines, the checkpoints under the chart at full
       width, so the chart keeps its rows and no checkpoint name is cut. */
    TrainingPane.-narrow #training-body { layout: vertical; }
    TrainingPane.-narrow #training-right { width: 100%; height: auto; max-height: 7; }
    TrainingPane.-narrow CheckpointTable { height: auto; max-height: 5; min-height: 2; }
    #training-legend { height: auto; padding: 0 1; }
    #training-scores { height: auto; padding: 0 1; color: $text-muted; display: none; }
    #training-scores.-shown { display: block; }
    #training-scores.-differ { color: $warning; text-style: bold; }
    #training-distill, #training-distill-title { display: none; }
    TrainingPane.-distilling #training-distill, TrainingPane.-distilling #training-distill-title { display: block; }
    #training-right .table-title { height: 1; color: $secondary; text-style: bold; padding: 0 1; }
    """
    BINDINGS = [
        Binding(
            "n",
            "start_run",
            "New run",
            id="training.start",
            tooltip="Start a LoRA training run from a form",
        ),
        Binding(
            "r",
            "pick_run",
            "Runs",
            id="training.runs",
            tooltip="Pick a run to follow or overlay: the runs folder and this session's runs",
        ),
        Binding(
            "a",
            "attach",
            "Attach",
            id="training.attach",
            tooltip="Follow a run: events file, adapter folder or mlx-lm stdout log",
        ),
        Binding(
            "x",
            "stop",
            "Stop",
            id="training.stop",
            tooltip="Stop the followed run (saves adapters, keeps checkpoints; again = kill)",
        ),
        Binding(
            "R",
            "continue_run",
            "Continue",
            id="training.continue",
            show=False,
            tooltip="New run from the followed run's last checkpoint (weights only)",
        ),
        Binding(
            "m",
            "smooth",
            "Smooth",
            id="training.smooth",
            show=False,
            tooltip="Smooth the train loss on the chart (raw points stay)",
        ),
        Binding(
            "plus,equals_sign",
            "zoom(1)",
            "Zoom in",
            id="training.zoom_in",
            tooltip="Plot fewer, later iterations",
        ),
        Binding(
            "minus", "zoom(-1)", "Zoom out", id="training.zoom_out", tooltip="Plot more iterations"
        ),
        Binding(
            "0", "zoom_all", "All", id="training.zoom_all", show=False, tooltip="Plot the whole run"
        ),
        Binding(
            "s",
            "score",
            "Score ckpts",
            id="training.score",
            tooltip="Run a battery on every checkpoint: mean score vs loss",
        ),
        Binding(
            "c",
            "curriculum",
            "Curriculum",
            id="training.curriculum",
            show=False,
            tooltip="Run a staged curriculum (TOML): stages in order, a confirmed fuse between them",
        ),
        Binding(
            "d",
            "distill",
            "Distill",
            id="training.distill",
            show=False,
            tooltip="Self-distill training data from the loaded model (samples, scores, keeps)",
        ),
    ]

    def __init__(self) -> None:
        super().__init__(id="training-pane")
        self.run: FollowedRun | None = None
        self.comparison: CheckpointComparison | None = None
        self.scores: list[tuple[int, float]] = []
        self.score_note = ""
        self.scoring: CheckpointScoring | None = None
        self.score_request = ScoreRequest()
        self.distiller: Any = None  # the running DistillRunner
        self.distill_request = default_distill_request()
        self._record: dict[str, Any] | None = None
        self._saved_status = ""
        self._drawn_at = 0.0
        self.background: list[FollowedRun] = []  # runs started here, no longer followed, still live
        self.overlay: FollowedRun | None = None  # the run drawn beside the followed one
        self.flow = CurriculumFlow(self)

    def compose(self) -> ComposeResult:
        yield Static(HINT, id="training-head", markup=False)
        yield Static("", id="training-curriculum", markup=False)
        yield Static("", id="training-figures", markup=False)
        with Horizontal(id="training-body"):
            with Vertical(id="training-left"):
                yield LossPlot(id="training-plot")
                yield Static("", id="training-legend", markup=False)
                yield Static("", id="training-scores", markup=False)
            with Vertical(id="training-right"):
                yield Static(CHECKPOINTS_TITLE, classes="table-title", markup=False)
                yield CheckpointTable(id="training-checkpoints")
                yield Static(
                    "Self-distillation",
                    classes="table-title",
                    id="training-distill-title",
                    markup=False,
                )
                yield DistillProgress(id="training-distill")

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW_WIDTH
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
            self.redraw()

    def on_mount(self) -> None:
        self.set_interval(self.POLL_SECONDS, self._poll, name="training-poll")
        self.query_one(LossPlot).replot()

    # -- following ---------------------------------------------------------------------------
    def follow(self, run: FollowedRun) -> None:
        """Show `run` from now on (its existing lines are read at once). A live run started
        here that stops being followed keeps being polled, so its end is still recorded."""
        old = self.run
        if old is not None and old is not run and old.process is not None and old.running:
            self.background.append(old)
        if run in self.background:
            self.background.remove(run)
        if self.overlay is not None and self.overlay.folder == run.folder:
            self.overlay = None
        self.run, self.comparison, self.scores, self.score_note = run, None, [], ""
        self.set_class(bool(run.labels.get("curriculum")), "-curriculum")
        run.poll()
        self._add_record()
        self.redraw()

    def attach(self, path: str, *, quiet: bool = False) -> bool:
        if self.flow.active:
            self.notify("a curriculum is running here: stop it (x) first", severity="warning")
            return False
        ours = self._started_here(path.strip())
        try:
            run = ours or FollowedRun.attach(path.strip())
        except (FileNotFoundError, OSError) as exc:
            self.notify(f"cannot attach: {exc}", severity="error", timeout=10)
            return False
        self.follow(run)
        if not quiet:
            self.notify(f"following {run.source.file}")
        return True

    def _started_here(self, path: str) -> FollowedRun | None:
        """The live run this app started for `path` (its folder or file), if any."""
        try:
            target = Path(path).expanduser().resolve()
        except OSError:
            return None
        for run in [*self.background, *([self.run] if self.run else [])]:
            if run.process is not None and target in (
                run.folder.resolve(),
                run.source.file.resolve(),
            ):
                return run
        return None

    def set_overlay(self, path: str | None) -> None:
        """Draw the run at `path` beside the followed one (None: no overlay)."""
        if path is None:
            self.overlay = None
        else:
            try:
                self.overlay = FollowedRun.attach(path)
                self.overlay.poll()
            except (FileNotFoundError, OSError) as exc:
                self.notify(f"cannot overlay: {exc}", severity="error", timeout=10)
                return
        self.redraw()

    def start_training(self, cfg: TrainingConfig) -> None:
        try:
            archive_previous_run(Path(cfg.adapter_path))
            proc = start_training(cfg, detached=True)  # outlives the app: quitting asks about it
        except (OSError, LemlabError) as exc:
            self.notify(f"could not start training: {exc}", severity="error", timeout=10)
            return
        self.follow(FollowedRun.started(proc))
        self.notify(f"training started: {cfg.adapter_path}")

    def _poll(self) -> None:
        for run in list(self.background):  # reap and record the end of runs no longer shown
            run.poll()
            if not run.running:
                self.background.remove(run)
        if self.run is not None:
            ticking = self.run.live and time.monotonic() - self._drawn_at >= REDRAW_SECONDS
            if self.run.poll() or ticking:
                self.redraw()
        if self.overlay is not None and self.overlay.live and self.overlay.poll():
            self.redraw()
        self.flow.poll()

    def redraw(self) -> None:
        run = self.run
        if run is None:
            return
        st = run.state
        where = "started here" if run.origin == "started" else "attached"
        name = f"{run.folder.name}/{run.source.file.name}"  # the full path is in the notification
        if run.labels.get("curriculum"):  # stage folders all end in adapter/: name the stage's
            name = f"{run.folder.parent.name}/{name}"
        self.query_one("#training-head", Static).update(visible_line(f"{where}: {name}"))
        self._drawn_at = time.monotonic()
        narrow = self.has_class("-narrow")
        lines = (
            compact_lines if narrow else lambda s, now: summary_lines(s, chart=False, now=now)
        )(st, time.time())
        if run.exit_note:
            lines.append(run.exit_note)
        # Messages and paths come from events.jsonl and logs: controls shown visibly.
        self.query_one("#training-figures", Static).update(visible("\n".join(lines)))
        plot = self.query_one(LossPlot)
        if self.overlay is not None:
            ov = self.overlay.state
            plot.show_overlay(ov.train_points, ov.val_points, self.overlay.folder.name)
        else:
            plot.show_overlay([], [], "")
        plot.run_name = run.folder.name
        plot.show_run(st.train_points, st.val_points, st.total_iters, self._best_val_iteration())
        self.query_one(CheckpointTable).show(st, self.comparison)
        self._show_scores()
        self._show_legend()
        self._update_record()

    def _show_legend(self) -> None:
        """One entry per line and point set on the chart, beside it rather than over the data."""
        from rich.text import Text

        box = self.query_one("#training-legend", Static)
        room = max((box.size.width or self.size.width or 80) - 2, 20)
        text, line = Text(), 0  # entries packed by hand: a wrap never splits one
        for mark, colour, label in self.query_one(LossPlot).legend():
            width = len(mark) + 1 + len(label)
            if line and line + 3 + width > room:
                text.append("\n")
                line = 0
            elif line:
                text.append("   ")
                line += 3
            text.append(mark, style=colour)
            text.append(visible_line(f" {label}"))
            line += width
        box.update(text)

    def _best_val_iteration(self) -> int | None:
        if self.comparison and self.comparison.best_by_val_loss:
            return self.comparison.best_by_val_loss.iteration
        assert self.run is not None
        best = self.run.state.best_checkpoint
        return next((it for it, p in self.run.state.checkpoints if p == best), None)

    # -- session records -----------------------------------------------------------------------
    def _add_record(self) -> None:
        if self.run is None:
            return
        rec = self.run.session_record()
        # One entry per run: following it again (a restored session, the picker) updates it.
        same = [
            r for r in self.lab.session.extra.get(RECORD_KIND, []) if r.get("file") == rec["file"]
        ]
        if same:
            self._record = same[-1]
            rec["origin"] = same[-1].get("origin", rec["origin"])  # who started it stays true
            rec["started"] = same[-1].get("started", rec["started"])
            self._record.update(rec)
        else:
            self.lab.session.add_record(RECORD_KIND, rec)
            self._record = self.lab.session.extra[RECORD_KIND][-1]
        self._saved_status = self.run.state.status
        self._save_session()

    def _update_record(self) -> None:
        if self.run is None or self._record is None:
            return
        rec = self.run.session_record()
        for key in ("origin", "started"):  # who started the run, and when, stay as first recorded
            if key in self._record:
                rec.pop(key)
        self._record.update(rec)
        if self.scores and self.comparison:
            self._record["checkpoint_scores"] = [[it, round(s, 3)] for it, s in self.scores]
        if self.run.state.status != self._saved_status:  # save on changes of status, not per poll
            self._saved_status = self.run.state.status
            self._save_session()

    def refresh_record(self, save: bool = False) -> None:
        """The followed run's labels changed (a curriculum stage was fused): update its entry."""
        self._update_record()
        if save:
            self._save_session()

    def _save_session(self) -> None:
        error = self.lab.save()
        if error:
            self.notify(error, severity="error")

    def session_opened(self) -> None:
        if self.run is not None:
            self._add_record()  # the followed run belongs to the new session too
            return
        self.restore_session_run()

    def restore_session_run(self) -> bool:
        """Follow the session's latest run that can still be read (as Battery restores its
        runs): a reopened session shows its training again, live or finished."""
        for rec in reversed(self.lab.session.records(RECORD_KIND)):
            path = rec.get("file") or rec.get("path")
            if isinstance(path, str) and Path(path).exists() and self.attach(path, quiet=True):
                return True
        return False

    # -- quitting --------------------------------------------------------------------------------
    def live_runs(self) -> list[FollowedRun]:
        runs = [*([self.run] if self.run else []), *self.background]
        return [r for r in runs if r.live]

    def live_work(self) -> str:
        runs = self.live_runs()
        if not runs:
            return ""
        names = ", ".join(r.folder.name for r in runs)
        text = (
            f"A training run is live: {names}."
            if len(runs) == 1
            else f"Training runs are live: {names}."
        )
        if self.flow.active:
            text += (
                " The curriculum's later stages start only while lemlab runs: run "
                "`lemlab curriculum FILE` (it skips finished stages) to go on without it."
            )
        return text

    def ask_before_quit(self, quit_app: Any) -> None:
        from lemlab.tui.training.quit_dialog import QuitWithRunScreen

        def chosen(choice: str | None) -> None:
            if choice is None:
                return
            if choice == "stop":
                runs = self.live_runs()
                notes = [run.request_stop() for run in runs]
                failed = [note for run, note in zip(runs, notes, strict=True) if not run.stop_asked]
                if failed:  # a run that cannot be stopped from here must not be left unknowingly
                    self.notify("not quitting: " + "; ".join(failed), severity="error", timeout=15)
                    return
            quit_app()

        self.app.push_screen(QuitWithRunScreen(self.live_work()), chosen)

    # -- actions -------------------------------------------------------------------------------
    def action_start_run(self) -> None:
        from lemlab.tui.training.start_form import StartRunScreen, initial_values

        if self.flow.active:
            self.notify("a curriculum is running here: stop it (x) first", severity="warning")
            return
        loaded = self.lab.loaded
        model = loaded.model_path if loaded else str(self.lab.session.model.get("path", ""))
        self.app.push_screen(
            StartRunScreen(initial_values(model)),
            lambda cfg: self.start_training(cfg) if cfg else None,
        )

    def action_pick_run(self) -> None:
        from lemlab.tui.training.run_picker import RunPickerScreen

        rows = list_runs(
            get_paths().runs_dir / "adapters",
            self.lab.session.records(RECORD_KIND),
            trainer_check(0.0),
        )

        def picked(choice: tuple[str, str] | None) -> None:
            if choice is None:
                return
            action, path = choice
            if action == "overlay":
                self.set_overlay(path)
            else:
                self.attach(path)

        self.app.push_screen(RunPickerScreen(rows), picked)

    def action_continue_run(self) -> None:
        from lemlab.tui.training.start_form import StartRunScreen, initial_values

        if self.run is None:
            self.notify("follow a stopped run first (r picks one)", severity="warning")
            return
        try:
            plan = plan_continue(self.run.folder)
        except (LemlabError, OSError) as exc:
            self.notify(f"cannot continue: {exc}", severity="warning", timeout=10)
            return
        values = {**initial_values(plan.values["model"]), **plan.values}
        self.app.push_screen(
            StartRunScreen(values, base=plan.values, note=plan.note_lines),
            lambda cfg: self.start_training(cfg) if cfg else None,
        )

    def action_smooth(self) -> None:
        plot = self.query_one(LossPlot)
        plot.set_smoothing(not plot.smoothing)
        self._show_legend()
        self.notify("train loss smoothed (moving average)" if plot.smoothing else "train loss raw")

    def action_attach(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        start = str(self.run.folder) if self.run else ""
        self.app.push_screen(
            TextPrompt("Attach to a run: events file, adapter folder or mlx-lm log", start),
            when_given(self.attach),
        )

    def action_stop(self) -> None:
        if self.flow.phase == "fusing":
            self.notify(self.flow.request_stop())
            return
        if self.run is None:
            self.notify("no run to stop", severity="warning")
            return
        self.notify(self.run.request_stop())

    def action_zoom(self, step: int) -> None:
        plot = self.query_one(LossPlot)
        plot.set_zoom(plot.zoom + step)
        self._show_legend()

    def action_zoom_all(self) -> None:
        self.query_one(LossPlot).set_zoom(0)
        self._show_legend()

    def action_score(self) -> None:
        from lemlab.tui.training.score_dialog import ScoreDialog

        if self.run is None:
            self.notify("attach to a run or start one first", severity="warning")
            return
        if self.scoring is not None:
            self.scoring.cancel()
            self.notify("cancelling the checkpoint scoring")
            return
        count = len(checkpoints_to_score(self.run.folder, self.run.state))
        if not count:
            self.notify("this run has no saved checkpoints yet", severity="warning")
            return
        self.app.push_screen(
            ScoreDialog(self.score_request, count), when_given(self.score_checkpoints)
        )

    def palette_verbs(self) -> list[Verb]:
        return [
            Verb("Training: start a run…", "LoRA training from a form", self.action_start_run),
            Verb(
                "Training: pick a run…",
                "runs folder and session: attach or overlay",
                self.action_pick_run,
            ),
            Verb(
                "Training: attach to a run…",
                "events file, adapter folder or mlx-lm log",
                self.action_attach,
            ),
            Verb(
                "Training: continue the run…",
                "from its last checkpoint (weights only)",
                self.action_continue_run,
            ),
            Verb("Training: smooth the train loss", "toggle a moving average", self.action_smooth),
            Verb(
                "Training: clear the overlay",
                "draw the followed run alone",
                lambda: self.set_overlay(None),
            ),
            Verb("Training: stop the run", "saves adapters, keeps checkpoints", self.action_stop),
            Verb(
                "Training: score checkpoints…",
                "mean battery score per checkpoint vs loss",
                self.action_score,
            ),
            Verb("Training: zoom in", "plot the later iterations", lambda: self.action_zoom(1)),
            Verb("Training: zoom out", "plot more iterations", lambda: self.action_zoom(-1)),
            Verb(
                "Training: self-distill data…",
                "sample, score and keep replies",
                self.action_distill,
            ),
            Verb(
                "Training: run curriculum…",
                "stages from a TOML file, a confirmed fuse between them",
                self.action_curriculum,
            ),
            Verb(
                "Training: export report (HTML)",
                "loss curves, checkpoints and configuration, under exports/",
                self.export_html,
            ),
        ]

    def export_html(self) -> Path | None:
        """The followed run (and the overlay, if drawn) as `lemlab report DIR --format html`
        draws it, with the checkpoint scores held here, as exports/<session>/<run>.report.html."""
        from lemlab.tui.chat.actions import exports_dir

        if self.run is None:
            self.notify("follow a run first (r picks one)", severity="warning")
            return None
        runs = [self.run, *([self.overlay] if self.overlay is not None else [])]
        names = [_run_label(r) for r in runs]
        scores = self.scores or _recorded_scores(self._record)
        try:
            # The file followed, not its folder: an mlx-lm log may have any name.
            series = [
                training_series(r.source.file, name, scores if r is self.run else ())
                for r, name in zip(runs, names, strict=True)
            ]
            out = exports_dir() / self.lab.session.name / f"{'-with-'.join(names)}.report.html"
            write_text_atomic(out, training_report_html(series, generated_now()))
        except Exception as exc:  # noqa: BLE001 - one line: an export must never end the app
            self.notify(
                f"report export failed: {(str(exc) or type(exc).__name__).splitlines()[0]}",
                severity="error",
            )
            return None
        self.notify(f"report written: {out}")
        return out

    def action_curriculum(self) -> None:
        self.flow.ask_path()

    def show_curriculum(self, line: str) -> None:
        self.query_one("#training-curriculum", Static).update(visible_line(line))
        self.set_class(bool(line), "-curriculum")

    # -- score vs checkpoint -------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="training-score")
    def score_checkpoints(self, request: ScoreRequest) -> None:
        # This thread only iterates the runner; every MLX call runs on the engine's own thread.
        assert self.run is not None
        self.score_request = request
        engine, loaded = self.lab.engine, self.lab.loaded
        try:
            scoring = prepare_scoring(
                engine,
                self.run.folder,
                self.run.state,
                request,
                loaded.model_path if loaded else None,
            )
        except LemlabError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        self.scoring = scoring
        self.app.call_from_thread(
            self._scoring_started, len(scoring.checkpoints), len(scoring.probes)
        )
        try:
            for event in scoring.events():
                self.app.call_from_thread(self._on_scoring_event, event)
        except Exception as exc:  # noqa: BLE001 - any failure is one line; the pane stays usable
            self.app.call_from_thread(
                self.notify, f"scoring failed: {exc}", severity="error", timeout=10
            )
        finally:
            self.scoring = None
            self._restore_model(loaded)

    def _restore_model(self, loaded: Any, then: Any = None) -> None:
        """Put back what the chat had loaded (scoring and distilling load their own weights)."""
        try:
            if loaded is not None:
                self.lab.engine.load(loaded.model_path, loaded.adapter_path).result()
            else:
                self.lab.engine.unload().result()
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(
                self.notify, f"could not reload the model: {exc}", severity="error"
            )
        self.app.call_from_thread(then or self._scoring_ended)

    def _scoring_started(self, checkpoints: int, probes: int) -> None:
        self.scores, self.comparison = [], None
        req = self.score_request
        self.score_note = (
            f"scoring {checkpoints} checkpoints: {probes} probes of {req.battery}, "
            f"max {req.max_tokens} tokens (s again cancels)"
        )
        self.redraw()

    def _on_scoring_event(self, event: ScoringEvent) -> None:
        if isinstance(event, ScoringProgress):
            self.lab.loading = (
                f"scoring checkpoint {event.iteration} ({event.done_units}/{event.total_units})"
            )
            self.app.refresh_status()  # type: ignore[attr-defined]
        elif isinstance(event, CheckpointScored):
            self.scores.append((event.iteration, event.mean))
            self._compare()
            self.redraw()
        elif isinstance(event, ScoringDone):
            self.score_note = "scoring cancelled" if event.cancelled else ""
            self._compare()
            self.redraw()

    def _scoring_ended(self) -> None:
        self.lab.loading = ""
        self.app.refresh_status()  # type: ignore[attr-defined]
        self._save_session()

    def _compare(self) -> None:
        assert self.run is not None
        files = dict(checkpoints_to_score(self.run.folder, self.run.state))
        self.comparison = compare(
            align_scores(self.run.state, self.scores, files), self.run.state.best_val
        )

    def _show_scores(self) -> None:
        box = self.query_one("#training-scores", Static)
        cmp = self.comparison
        plot = self.query_one(LossPlot)
        best_score = cmp.best_by_score.iteration if cmp and cmp.best_by_score else None
        plot.show_scores(self.scores, best_score)
        text = self.score_note
        if cmp and cmp.best_by_score:
            s, v = cmp.best_by_score, cmp.best_by_val_loss
            text = (
                f"{text}\n" if text else ""
            ) + f"best by score: iteration {s.iteration:,} ({s.score:.2f})"
            if v is not None and v.val_loss is not None:
                verdict = "same checkpoint" if cmp.agree else "DIFFERENT checkpoints"
                text += (
                    f" · best by val loss: iteration {v.iteration:,} ({v.val_loss:.3f}) · {verdict}"
                )
        box.update(text)
        box.set_class(bool(text), "-shown")  # an empty line would take a chart row
        box.set_class(bool(cmp and not cmp.agree and cmp.best_by_val_loss), "-differ")

    # -- self-distillation ---------------------------------------------------------------------
    def action_distill(self) -> None:
        from lemlab.tui.training.distill_flow import DistillDialog

        loaded = self.lab.loaded
        if self.distiller is not None:
            self.distiller.cancel()
            self.notify("cancelling the self-distillation")
            return
        if loaded is None:
            self.notify("load a model first: self-distillation samples from it", severity="warning")
            return
        self.app.push_screen(
            DistillDialog(self.distill_request, loaded.model_path), when_given(self.distill)
        )

    @work(thread=True, exclusive=True, group="training-distill")
    def distill(self, req: DistillRequest) -> None:
        # Same shape as scoring: this thread iterates the core runner, the engine thread does MLX.
        self.distill_request, loaded = req, self.lab.loaded
        if loaded is None:
            return
        try:
            job = prepare_distill(
                model=loaded.model_path,
                adapter=loaded.adapter_path,
                prompts=req.battery,
                output=req.output,
                resume=Path(req.output).exists(),
                samples=req.samples,
                threshold=req.threshold,
                max_tokens=req.max_tokens,
                temperature=req.temperature,
            )
        except (LemlabError, OSError) as exc:
            self.app.call_from_thread(
                self.notify, f"cannot distill: {exc}", severity="error", timeout=10
            )
            return
        self.distiller = DistillRunner(
            self.lab.engine, job.probes, job.settings, job.scorer, job.kernel_text, job.state
        )
        recorder = DistillRecorder(job.output, job.settings)
        self.app.call_from_thread(self._distill_started, req.threshold)
        widget = self.query_one(DistillProgress)
        done: DistillDone | None = None
        try:
            for event in self.distiller.events():
                if isinstance(event, SampleScored):
                    recorder.sample_done(event.sample, event.wall_s)
                elif isinstance(event, DistillDone):
                    done = event
                self.app.call_from_thread(widget.apply, event)
            if done is not None and not done.cancelled:
                s = recorder.finish(
                    len(job.probes),
                    job.state.records,
                    job.state.prior_seconds,
                    {"battery": job.battery},
                )
                note = (
                    f"self-distill: kept {s['total_kept']}/{s['total_generated']} in {job.output}"
                )
                self.app.call_from_thread(self.notify, note, timeout=10)
        except Exception as exc:  # noqa: BLE001 - one line; the samples written so far stay
            self.app.call_from_thread(
                self.notify, f"self-distill failed: {exc}", severity="error", timeout=10
            )
        finally:
            self.distiller = None
            self._restore_model(loaded, self._distill_ended)

    def _distill_started(self, threshold: float) -> None:
        self.query_one(DistillProgress).threshold = threshold
        self.add_class("-distilling")
        self.lab.loading = "self-distilling (d again cancels)"
        self.app.refresh_status()  # type: ignore[attr-defined]

    def _distill_ended(self) -> None:
        self.lab.loading = ""
        self.app.refresh_status()  # type: ignore[attr-defined]


def _run_label(run: FollowedRun) -> str:
    """The run's folder name; a curriculum stage's (every one ends in adapter/) with its stage."""
    name = run.folder.name
    return f"{run.folder.parent.name}-{name}" if run.labels.get("curriculum") else name


def _recorded_scores(record: dict[str, Any] | None) -> list[tuple[int, float]]:
    """Checkpoint scores kept in the session's record of the run (from an earlier sitting);
    the session file is the user's to edit, so anything not a pair of numbers is left out."""
    out = []
    for item in (record or {}).get("checkpoint_scores") or []:
        try:
            it, score = item
            out.append((int(it), float(score)))
        except (TypeError, ValueError):
            continue
    return out


PANE = TrainingPane
