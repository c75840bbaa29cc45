"""A staged curriculum run from the Training pane, one step at a time.

The order of work and the state file are the core's (CurriculumProgress, the same as `lemlab
curriculum`); each stage trains in the same child `lemlab train` uses and is followed by the pane
like any run it started; before each fuse a dialog asks. The fuse itself is `python -m mlx_lm
fuse` in a child process (engine.fuse), waited for on a worker thread that does no MLX work.
Declining a fuse, stopping a stage or a failure ends the flow; a rerun skips finished work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from lemlab.core.errors import LemlabError
from lemlab.core.models.paths import is_fused
from lemlab.core.training.curriculum import (
    Curriculum,
    CurriculumProgress,
    FuseJob,
    eval_file,
    fuse_job,
    load_curriculum,
    stage_rows,
)
from lemlab.core.training.preflight import preflight_curriculum
from lemlab.engine.fuse import FuseError, fuse_adapter
from lemlab.engine.stage_eval import EvalInterrupted, run_stage_eval
from lemlab.engine.train_runner import start_training
from lemlab.tui.screens.results import when_given
from lemlab.tui.training.follow import FollowedRun

if TYPE_CHECKING:
    from textual.app import App
    from textual.notifications import SeverityLevel
    from textual.worker import Worker

    from lemlab.tui.state import LabState


class CurriculumHost(Protocol):
    """What the flow uses of the pane that runs it (the Training pane), so the flow needs no
    import of that pane: it calls these, the pane holds the flow."""

    @property
    def app(self) -> App[Any]: ...

    @property
    def lab(self) -> LabState: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...

    def run_worker(
        self,
        work: Callable[[], None],
        name: str | None = "",
        group: str = "default",
        description: str = "",
        exit_on_error: bool = True,
        start: bool = True,
        exclusive: bool = False,
        thread: bool = False,
    ) -> Worker[None]: ...

    def follow(self, run: FollowedRun) -> None:
        """Show this run in the pane and poll it."""
        ...

    def refresh_record(self, save: bool = False) -> None:
        """Redraw the run record (and save the session when `save`)."""
        ...

    def show_curriculum(self, line: str) -> None:
        """Put the flow's one-line progress in view."""
        ...


# What the one-line view says per stage while the flow works on it.
PHASE_WORDS = {
    "training": "training",
    "confirm": "trained, fuse?",
    "fusing": "fusing",
    "evaluating": "evaluating",
}


class CurriculumFlow:
    def __init__(self, pane: CurriculumHost) -> None:
        self.pane = pane
        self.cur: Curriculum | None = None
        self.progress: CurriculumProgress | None = None
        self.stage: int | None = None
        self.phase = ""  # "", training, confirm, fusing
        self.run: FollowedRun | None = None
        self.stop_asked = False
        self.last_path = ""
        self.outcome = ""  # how the last curriculum ended (also shown as a notification)

    @property
    def active(self) -> bool:
        return bool(self.phase)

    # -- opening --------------------------------------------------------------------------------
    def ask_path(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        if self.active:
            self.pane.notify("a curriculum is already running here", severity="warning")
            return
        self.pane.app.push_screen(
            TextPrompt("Run a curriculum: TOML file with [[stage]] tables", self.last_path),
            when_given(self.open),
        )

    def open(self, path: str) -> bool:
        """Load and check every stage, then show the plan; a bad file is one line of notice."""
        from lemlab.tui.training.curriculum_dialogs import CurriculumDialog

        self.last_path = path.strip()
        try:
            cur = load_curriculum(self.last_path)
            plan = preflight_curriculum(cur, todo=range(len(cur.stages)))
            rows = stage_rows(cur, is_fused)
        except (LemlabError, OSError) as exc:
            self.pane.notify(f"curriculum: {exc}", severity="error", timeout=10)
            return False
        self.pane.app.push_screen(
            CurriculumDialog(cur, rows, plan.lines, plan.warned),
            lambda yes: self.start(cur) if yes else None,
        )
        return True

    def start(self, cur: Curriculum) -> None:
        self.cur, self.progress, self.stop_asked = cur, CurriculumProgress(cur), False
        self.show_line()
        self.advance()

    # -- stepping -------------------------------------------------------------------------------
    def advance(self) -> None:
        assert self.progress is not None
        if self.stop_asked and self.stage is not None:
            self.finish(
                f"curriculum stopped after stage {self.stage + 1}; run it again to continue"
            )
            return
        step = self.progress.next_step(is_fused)
        if step is None:
            self.progress.save()
            self.finish("curriculum done: every stage trained" + self._state_note())
            return
        kind, i = step
        self.stage = i
        if kind == "train":
            self._train(i)
        elif kind == "eval":
            self._eval(i)
        else:
            self._ask_fuse(i)

    def _eval(self, i: int) -> None:
        """The plan's [eval] battery on the stage (a `lemlab ab` child, waited for on a worker)."""
        assert self.cur is not None
        self.phase = "evaluating"
        self.show_line()
        self.pane.run_worker(
            lambda: self._run_eval(i),
            thread=True,
            group="training-eval",
            exclusive=True,
            exit_on_error=False,
        )

    def _run_eval(self, i: int) -> None:
        assert self.cur is not None and self.cur.eval is not None
        scores, error = None, ""
        try:
            scores = run_stage_eval(
                self.cur.eval,
                model=self.cur.input_model(i),
                adapter=self.cur.adapter_dir(i),
                out=eval_file(self.cur, i),
            )
        except EvalInterrupted:
            error = "evaluation interrupted"
        except (LemlabError, OSError) as exc:
            error = str(exc)
        self.pane.app.call_from_thread(self._evaluated, i, scores, error)

    def _evaluated(self, i: int, scores: Any, error: str) -> None:
        assert self.progress is not None and self.cur is not None
        if error:
            self.progress.save()
            self.finish(f"curriculum stopped: stage {i + 1}: {error}", error=True)
            return

        self.progress.note(
            i,
            eval_file=str(eval_file(self.cur, i)),
            battery_before=scores.before,
            battery_after=scores.after,
        )
        self.progress.save()
        self.pane.notify(f"stage {i + 1} {self.cur.stages[i].name}: {scores.line()}", timeout=10)
        self.advance()

    def _train(self, i: int) -> None:
        assert self.cur is not None and self.progress is not None
        st = self.cur.stages[i]
        try:
            self.progress.begin_training(i)
            proc = start_training(self.cur.stage_config(i), detached=True)  # outlives the app
        except (OSError, LemlabError) as exc:
            self.progress.set(i, "failed")
            self.finish(f"stage {i + 1} {st.name}: could not start training: {exc}", error=True)
            return
        labels = {
            "curriculum": str(self.cur.path),
            "stage": st.name,
            "stage_number": i + 1,
            "stages": len(self.cur.stages),
            "model": str(self.cur.input_model(i)),
        }
        self.run = FollowedRun.started(proc, labels)
        self.phase = "training"
        self.pane.follow(self.run)
        self.show_line()
        self.pane.notify(f"curriculum stage {i + 1}/{len(self.cur.stages)} {st.name}: training")

    def poll(self) -> None:
        """Called from the pane's timer after the followed run was read."""
        if self.phase != "training" or self.run is None or not self.run.ended:
            return
        assert self.progress is not None and self.stage is not None and self.cur is not None
        i, status = self.stage, self.run.state.status
        if status != "done":
            how = f"ended {status}" if self.run.state.finished else "ended without a final event"
            self.progress.set(i, "stopped")
            self.finish(
                f"curriculum stopped: stage {i + 1} {self.cur.stages[i].name} {how}; "
                "run the curriculum again to retrain it",
                error=status != "stopped",
            )
            return
        self.progress.set(i, "trained")
        self.advance()

    def _ask_fuse(self, i: int) -> None:
        from lemlab.tui.training.curriculum_dialogs import FuseDialog

        assert self.cur is not None
        self.phase = "confirm"
        self.show_line()
        job = fuse_job(self.cur, i)
        self.pane.app.push_screen(
            FuseDialog(self.cur, job), lambda yes: self._fuse_answer(job, bool(yes))
        )

    def _fuse_answer(self, job: FuseJob, yes: bool) -> None:
        assert self.cur is not None and self.progress is not None
        if not yes:
            self.progress.save()
            nxt = job.stage + 2
            self.finish(
                f"curriculum stopped after stage {job.stage + 1} (not fused); "
                f"run it again to fuse and continue with stage {nxt}"
            )
            return
        self.phase = "fusing"
        self.show_line()
        self.pane.lab.loading = f"fusing stage {job.stage + 1} into {job.out.name}"
        self.pane.app.refresh_status()  # type: ignore[attr-defined]
        self.pane.run_worker(
            lambda: self._fuse(job),
            thread=True,
            group="training-fuse",
            exclusive=True,
            exit_on_error=False,
        )

    def _fuse(self, job: FuseJob) -> None:
        # Worker thread: it only waits for the fuse child; no MLX runs in this process.
        error = summary = ""
        try:
            res = fuse_adapter(job.model, job.adapter, job.out, job.log, requantize=job.requantize)
            summary = res.summary()  # dequantized or not, and the loss before / after the merge
        except (FuseError, OSError) as exc:
            error = str(exc)
        self.pane.app.call_from_thread(self._fused, job, error, summary)

    def _fused(self, job: FuseJob, error: str, summary: str = "") -> None:
        assert self.progress is not None
        self.pane.lab.loading = ""
        self.pane.app.refresh_status()  # type: ignore[attr-defined]
        if error:
            self.progress.save()
            self.finish(f"curriculum stopped: {error}", error=True)
            return
        self.progress.set(job.stage, "fused")
        if summary:
            self.pane.notify(f"stage {job.stage + 1}: {summary}", timeout=10)
        if self.run is not None and self.run.labels.get("stage_number") == job.stage + 1:
            self.run.labels["fused"] = str(job.out)
            self.pane.refresh_record(save=True)
        self.advance()

    # -- stopping and showing -------------------------------------------------------------------
    def request_stop(self) -> str:
        """x while fusing: the fuse finishes (a half-written model is never used), then the flow stops."""
        self.stop_asked = True
        return "the fuse finishes first; the curriculum stops after it"

    def finish(self, note: str, error: bool = False) -> None:
        self.outcome = note
        self.phase, self.stop_asked = "", False
        self.show_line()
        self.stage = None
        self.pane.notify(note, severity="error" if error else "information", timeout=10)

    def _state_note(self) -> str:
        assert self.cur is not None
        return f" (state in {self.cur.output.name}/curriculum-state.toml)"

    def line(self) -> str:
        """One line: every stage with its status, the current one with what the flow is doing."""
        if self.cur is None:
            return ""
        parts = []
        for row in stage_rows(self.cur, is_fused):
            status = (
                PHASE_WORDS.get(self.phase, row.status)
                if row.number - 1 == self.stage
                else row.status
            )
            parts.append(f"{row.number} {row.name} {status}")
        return f"curriculum {self.cur.path.name}: " + " · ".join(parts)

    def show_line(self) -> None:
        self.pane.show_curriculum(self.line())
