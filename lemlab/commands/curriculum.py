"""`lemlab curriculum FILE`: run training stages in order, fusing each stage's adapter into the
weights the next stage starts from. Fusing writes a full merged copy of the model per stage, so
it needs the explicit --fuse flag. Rerunning skips stages whose adapter finished (done event)
and fuses that already completed.

A quantized base is fused into a dequantized (full-precision) model that the next stage trains
on; `--requantize` (or `requantize = true` in the file) re-quantizes instead, which rounds away
part of each stage's update: the plan warns and asks.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.locks import acquire
from lemlab.core.training.curriculum import (
    STATE_FILE,
    Curriculum,
    CurriculumProgress,
    fuse_job,
    load_curriculum,
    stage_done,
)
from lemlab.core.training.events import load_run
from lemlab.core.training.preflight import check_eval as check_eval  # `lemlab pipeline`'s too
from lemlab.core.training.preflight import preflight_curriculum
from lemlab.core.training.stage_eval import EVAL_FILE

# Merging may move the validation loss by float16 arithmetic alone (~0.3% of what a stage
# learned on the real 135M model); more than this share of the stage's own change is a loss.
FUSE_DRIFT_SHARE = 0.1
FUSE_DRIFT_FLOOR = 1e-3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="curriculum TOML (see examples/)")
    p.add_argument(
        "--fuse",
        action="store_true",
        help="allow fusing each stage's adapter into a merged model for the next stage",
    )
    p.add_argument(
        "--requantize",
        action="store_true",
        help="re-quantize fused models to the base's bits (smaller, but rounding loses "
        "part of each stage's update; default: fuse into a dequantized model)",
    )
    p.add_argument("--only", metavar="STAGE", help="run just this stage (name or number)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    p.add_argument("--yes", action="store_true", help="do not ask about small-model warnings")


def _selected(cur: Curriculum, only: str | None) -> list[int]:
    return [cur.find_stage(only)] if only else list(range(len(cur.stages)))


def _require_fuse(cur: Curriculum, todo: list[int], fuse: bool) -> None:
    if fuse or not any(cur.needs_fuse(i) for i in todo):
        return
    raise LemlabError(
        f"this curriculum has {len(cur.stages)} stages and fusing is required between stages "
        f"(each fuse writes a full merged model to {cur.output}/NN-stage/fused): rerun with --fuse"
    )


def run(args: argparse.Namespace) -> int:
    cur = load_curriculum(args.file)
    cur.requantize = cur.requantize or args.requantize
    todo = _selected(cur, args.only)
    if not args.dry_run:
        _require_fuse(cur, todo, args.fuse)
    from lemlab.commands.train import show_plan

    plan = preflight_curriculum(cur, todo=todo)
    if not show_plan(
        plan.lines,
        plan.warned,
        dry_run=args.dry_run,
        yes=args.yes,
        state_file=cur.output / STATE_FILE,
    ):
        return 0

    # One run per output folder (its state file): a second one gets one line naming this one.
    with acquire(cur.output / STATE_FILE, f"curriculum output {cur.output}"):
        return run_stages(cur, todo)


def run_stages(cur: Curriculum, todo: list[int]) -> int:
    from lemlab.commands.train import train_and_follow
    from lemlab.core.models.paths import is_fused
    from lemlab.engine.fuse import FuseError, fuse_adapter

    progress = CurriculumProgress(cur, todo)
    for i in todo:
        name = cur.stages[i].name
        if i > 0 and cur.needs_fuse(i - 1):
            print(
                f"stage {i + 1} {name}: starts from stage {i}'s merged model {cur.input_model(i)}",
                file=sys.stderr,
            )
        if stage_done(cur, i):
            print(
                f"stage {i + 1} {name}: already trained, skipped (delete {cur.stage_dir(i)} to retrain)"
            )
        else:
            progress.begin_training(i)
            print(f"stage {i + 1} {name}: training on {cur.input_model(i)}", file=sys.stderr)
            code = train_and_follow(
                cur.stage_config(i), label=f"[{i + 1}/{len(cur.stages)} {name}] "
            )
            if code != 0:
                progress.set(i, "stopped")
                return code
        progress.set(i, "trained", save=False)
        if cur.needs_fuse(i) and not is_fused(cur.fused_dir(i)):
            job = fuse_job(cur, i)
            print(f"stage {i + 1} {name}: fusing into {job.out}: {job.describe()}", file=sys.stderr)
            try:
                res = fuse_adapter(
                    job.model, job.adapter, job.out, job.log, requantize=job.requantize
                )
            except FuseError as exc:
                progress.save()
                raise LemlabError(str(exc)) from None
            report_fuse(i, name, res, stage_start_loss(cur, i))
            progress.note(i, fused_val_loss=res.val_loss_fused)
        if cur.eval is not None and not evaluate(cur, i, progress):
            progress.set(i, "fused" if cur.needs_fuse(i) else "trained")
            return 130  # Ctrl+C during the evaluation: a rerun resumes it
        progress.note(i, final_val_loss=final_val_loss(cur, i))
        progress.set(i, "fused" if cur.needs_fuse(i) else "trained")
        print(stage_line(cur, i, progress.figures.get(name, {})))
    print(f"curriculum done: state in {cur.output / STATE_FILE}")
    return 0


def evaluate(cur: Curriculum, i: int, progress: CurriculumProgress) -> bool:
    """The stage's battery scores into the state file; False when interrupted."""
    from lemlab.commands.stage_eval import EvalInterrupted, run_stage_eval

    assert cur.eval is not None
    out = cur.stage_dir(i) / EVAL_FILE
    try:
        scores = run_stage_eval(
            cur.eval,
            cur.input_model(i),
            cur.adapter_dir(i),
            out,
            f"stage {i + 1} {cur.stages[i].name}: ",
        )
    except EvalInterrupted:
        progress.save()
        return False
    progress.note(i, eval_file=str(out), battery_before=scores.before, battery_after=scores.after)
    return True


def final_val_loss(cur: Curriculum, i: int) -> float | None:
    """The stage's end: base + adapter as the fuse measured it, else the last val event
    (mlx-lm measures that one before the last step)."""
    from lemlab.engine.fuse import read_marker

    loss = read_marker(cur.fused_dir(i)).get("val_loss_adapter") if cur.needs_fuse(i) else None
    if isinstance(loss, int | float):
        return float(loss)

    try:
        points = load_run(cur.adapter_dir(i)).val_points
    except (LemlabError, OSError):
        return None
    return points[-1][1] if points else None


def stage_line(cur: Curriculum, i: int, fig: dict[str, Any]) -> str:
    """`stage 1 ethics: val loss 1.5420 · battery 8.67 -> 11.00 (+2.33)`: loss and scores side by side."""
    parts = []
    if isinstance(fig.get("final_val_loss"), int | float):
        parts.append(f"val loss {fig['final_val_loss']:.4f}")
    before, after = fig.get("battery_before"), fig.get("battery_after")
    if isinstance(before, int | float) and isinstance(after, int | float):
        parts.append(f"battery {before:.2f} -> {after:.2f} ({after - before:+.2f})")
    return f"stage {i + 1} {cur.stages[i].name}: " + (" · ".join(parts) or "done")


def stage_start_loss(cur: Curriculum, i: int) -> float | None:
    """The stage's first validation loss (measured before its first step)."""
    try:
        points = load_run(cur.adapter_dir(i)).val_points
    except (LemlabError, OSError):
        return None
    return points[0][1] if points else None


def fuse_drift_warning(res: Any, start: float | None) -> str | None:
    """Why the merged model does not start where the stage ended, or None when it does."""
    drift = res.loss_drift()
    if drift is None:
        return None
    learned = abs(start - res.val_loss_adapter) if start is not None else 0.0
    if drift <= max(FUSE_DRIFT_FLOOR, FUSE_DRIFT_SHARE * learned):
        return None
    moved = f" (the stage moved it {learned:.4f})" if start is not None else ""
    return (
        f"the merged model's validation loss differs from base + adapter by {drift:.4f}"
        f"{moved}: the next stage does not start where this one ended"
    )


def report_fuse(i: int, name: str, res: Any, start: float | None) -> None:
    line = f"stage {i + 1} {name}: {res.summary()}"
    if start is not None and res.val_loss_adapter is not None:
        line += f"; the stage moved it {start:.4f} -> {res.val_loss_adapter:.4f}"
    print(line, file=sys.stderr)
    warning = fuse_drift_warning(res, start)
    if warning:
        print(f"lemlab: WARNING: stage {i + 1} {name}: {warning}", file=sys.stderr)
