"""One followed training run: the core RunWatcher over its file, plus the child process when the
TUI started it. No Textual here; the pane polls `poll()` from a timer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.sessions import now_iso
from lemlab.core.training.events import RunSource, RunState, RunWatcher, resolve_run_source
from lemlab.engine.train_runner import (
    EXIT_STOPPED,
    TrainingProcess,
    record_lost_trainer,
    stop_run,
    trainer_check,
)

QUIET_LOG_SECONDS = 300.0  # an unfinished log untouched this long is no longer taken as live
LOST_TRAINER_GRACE = (
    3.0  # seconds an attached run's trainer may be gone before it counts as interrupted
)


class LiveClock:
    """Time for untimed (stdout-log) events, but only once the file's existing lines are read:
    a finished log attached after the fact would otherwise look like a zero-second run."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self) -> float | None:
        return time.time() if self.armed else None


@dataclass
class FollowedRun:
    watcher: RunWatcher
    process: TrainingProcess | None = None
    origin: str = "attached"  # "started" (by this TUI) or "attached"
    exit_note: str = ""  # set when our child ended without a final event
    started_at: str = field(default_factory=now_iso)
    stop_asked: bool = False
    labels: dict[str, Any] = field(default_factory=dict)  # extra record keys (curriculum, stage)
    _clock: LiveClock = field(default_factory=LiveClock)

    @classmethod
    def attach(cls, path: str | Path) -> FollowedRun:
        """Follow an events file, adapter folder or mlx-lm log. FileNotFoundError (one line)."""
        clock = LiveClock()
        watcher = RunWatcher(
            resolve_run_source(path), clock=clock, liveness=trainer_check(LOST_TRAINER_GRACE)
        )
        return cls(watcher, _clock=clock, origin="attached")

    @classmethod
    def started(cls, process: TrainingProcess, labels: dict[str, Any] | None = None) -> FollowedRun:
        clock = LiveClock()
        clock.armed = True  # every line of a run we started is new
        return cls(
            RunWatcher(process.source, clock=clock),
            process,
            "started",
            labels=dict(labels or {}),
            _clock=clock,
        )

    @property
    def state(self) -> RunState:
        return self.watcher.state

    @property
    def source(self) -> RunSource:
        return self.watcher.source

    @property
    def folder(self) -> Path:
        return self.watcher.source.folder

    @property
    def ended(self) -> bool:
        """Our child has exited and its outcome is known (a final event, or an exit note)."""
        if self.process is None or self.process.poll() is None:
            return False
        return self.state.finished or bool(self.exit_note)

    @property
    def running(self) -> bool:
        """Our child is alive (attached runs: the file says it is still going)."""
        if self.process is not None:
            return self.process.poll() is None
        return not self.state.finished

    def poll(self) -> bool:
        """Read new complete lines; True when the view should be redrawn."""
        exited = self.process is not None and self.process.poll() is not None
        changed = bool(self.watcher.poll())
        self._clock.armed = True
        if exited and not self.exit_note and not self.state.finished:
            assert self.process is not None
            code = self.process.poll()
            if code == EXIT_STOPPED:
                reason = "training process stopped; checkpoints kept"
            else:  # it died: tell other watchers of the file (`lemlab watch`, another TUI)
                reason = record_lost_trainer(self.folder, code)  # type: ignore[arg-type]
            self.exit_note = f"{reason} (log: {self.process.log_path})"
            changed = True
        return self.watcher.check_trainer() or changed

    @property
    def live(self) -> bool:
        """A trainer is (as far as can be told) still working on this run. An attached file
        with no trainer pid (an mlx-lm log) counts while it grew in the last few minutes: a log
        left by a killed run must not ask on every quit."""
        if not self.running or self.state.finished:
            return False
        if self.process is not None or self.state.trainer is not None:
            return True
        try:
            return time.time() - self.source.file.stat().st_mtime < QUIET_LOG_SECONDS
        except OSError:
            return False

    def request_stop(self) -> str:
        """First call: ask the trainer to save and stop; a second call kills our own child.
        A run attached to (started by an earlier app, or `lemlab train`) is stopped through the
        pid its start event recorded, after the same checks `lemlab train --stop` makes."""
        if self.process is None:
            if self.state.finished:
                return "the run has already ended"
            if self.stop_asked:
                return "stop already asked: the trainer saves adapters.safetensors, then ends"
            try:
                pid = stop_run(self.folder)
            except LemlabError as exc:
                return f"cannot stop this run: {exc}"
            self.stop_asked = True
            return f"stopping the trainer (pid {pid}): it saves adapters.safetensors first"
        if self.process.poll() is not None:
            return "the run has already ended"
        if self.stop_asked:
            self.process.kill()
            return "training process killed; checkpoints kept"
        self.process.request_stop()
        self.stop_asked = True
        return "stopping: the trainer saves adapters.safetensors first (stop again to kill)"

    def session_record(self) -> dict[str, Any]:
        """The [[training_runs]] entry for this run (no None values: TOML has no null)."""
        st = self.state
        rec: dict[str, Any] = {
            "origin": self.origin,
            "path": str(self.folder),
            "file": str(self.source.file),
            "started": self.started_at,
            "status": st.status,
            "iteration": st.iteration,
        }
        if st.total_iters:
            rec["total_iters"] = st.total_iters
        if st.best_val:
            rec["best_val_iteration"], rec["best_val_loss"] = (
                st.best_val[0],
                round(st.best_val[1], 4),
            )
        if st.best_checkpoint:
            rec["best_checkpoint"] = st.best_checkpoint
        if st.log_format:
            rec["log_format"] = st.log_format
        rec.update(self.labels)
        return rec
