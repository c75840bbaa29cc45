"""Run a plan's `[eval]` battery after a stage (curriculum) or phase (pipeline): `lemlab ab` in a
child process, so its model memory is freed before the next training, its A/B file is the
research format, and an interrupted evaluation resumes (--resume) on the next run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.training.stage_eval import EvalSettings, StageScores, eval_command, read_scores

EXIT_INTERRUPTED = 130


class EvalInterrupted(Exception):
    pass


def run_stage_eval(ev: EvalSettings, model: Path, adapter: Path, out: Path, label: str) -> StageScores:
    """Scores of the stage (the file's, when an earlier run completed it). Progress lines of
    the child go to stderr as they come."""
    done = read_scores(out)
    if done is not None:
        return done
    print(f"{label}evaluating: {ev.describe()} on {model} with and without {adapter} -> {out}",
          file=sys.stderr)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    code = subprocess.run(eval_command(ev, model, adapter, out), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, env=dict(os.environ)).returncode  # fmt: skip
    if code == EXIT_INTERRUPTED:
        raise EvalInterrupted
    scores = read_scores(out)
    if code != 0 or scores is None:
        raise LemlabError(f"{label}evaluation failed (lemlab ab exit {code}); rerun to resume it "
                          f"({out})")  # fmt: skip
    return scores
