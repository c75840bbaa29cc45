"""A plan's `[eval]` battery after a stage or phase, for the `curriculum` and `pipeline`
commands: lemlab.engine.stage_eval runs it; the line said before it starts goes to stderr."""

from __future__ import annotations

import sys
from pathlib import Path

from lemlab.core.training.stage_eval import EvalSettings, StageScores
from lemlab.engine.stage_eval import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from lemlab.engine.stage_eval import EvalInterrupted as EvalInterrupted
from lemlab.engine.stage_eval import run_stage_eval as _run_stage_eval


def run_stage_eval(
    ev: EvalSettings, model: Path, adapter: Path, out: Path, label: str
) -> StageScores:
    """Scores of the stage (the file's, when an earlier run completed it). Progress lines of
    the child go to stderr as they come."""
    return _run_stage_eval(
        ev,
        model=model,
        adapter=adapter,
        out=out,
        label=label,
        announce=lambda line: print(line, file=sys.stderr),
    )
