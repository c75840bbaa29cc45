"""Run a plan's `[eval]` battery after a stage (curriculum) or phase (pipeline): `lemlab ab` in a
child process, so its model memory is freed before the next training, its A/B file is the
research format, and an interrupted evaluation resumes (--resume) on the next run. Used by the
`curriculum` and `pipeline` commands and the TUI's curriculum flow alike (no mlx here: the
child imports it)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.training.stage_eval import EvalSettings, StageScores, eval_command, read_scores

EXIT_INTERRUPTED = 130


class EvalInterrupted(Exception):
    """The child stopped on Ctrl+C (exit 130): its lines so far stay, a rerun resumes it."""


def run_stage_eval(
    ev: EvalSettings,
    *,
    model: Path,
    adapter: Path,
    out: Path,
    label: str = "",
    announce: Callable[[str], None] | None = None,
) -> StageScores:
    """Scores of the stage (the file's, when an earlier run completed it). `announce` gets the
    one line said before the child starts; the child's progress lines go to stderr as they
    come. Raises EvalInterrupted, or LemlabError when the child fails."""
    done = read_scores(out)
    if done is not None:
        return done
    if announce is not None:
        announce(
            f"{label}evaluating: {ev.describe()} on {model} with and without {adapter} -> {out}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    code = subprocess.run(
        eval_command(ev, model, adapter, out),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=dict(os.environ),
    ).returncode
    if code == EXIT_INTERRUPTED:
        raise EvalInterrupted
    scores = read_scores(out)
    if code != 0 or scores is None:
        raise LemlabError(
            f"{label}evaluation failed (lemlab ab exit {code}); rerun to resume it ({out})"
        )
    return scores
