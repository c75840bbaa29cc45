"""`lemlab curriculum FILE`: run training stages in order, fusing each stage's adapter into the
weights the next stage starts from. Fusing writes a full merged copy of the model per stage, so
it needs the explicit --fuse flag. Rerunning skips stages whose adapter finished (done event)
and fuses that already completed.
"""

from __future__ import annotations

import argparse
import sys

from lemlab.core.curriculum import (
    STATE_FILE,
    Curriculum,
    CurriculumProgress,
    fuse_job,
    load_curriculum,
    stage_done,
)
from lemlab.core.errors import LemlabError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="curriculum TOML (see examples/)")
    p.add_argument("--fuse", action="store_true",
                   help="allow fusing each stage's adapter into a merged model for the next stage")
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


def preflight(cur: Curriculum, todo: list[int]) -> tuple[list[str], bool]:
    """Check every stage before training any; return the plan lines and whether any warned."""
    from lemlab.commands.train import preflight as train_preflight
    from lemlab.core.training_config import format_figures, small_model_warning

    lines: list[str] = []
    warned = False
    for i in todo:
        cfg = cur.stage_config(i)
        if i > 0 and cur.input_model(i) != cur.base_model and not cur.input_model(i).exists():
            if todo[0] == i:  # not produced by this run: it must already exist
                prev = cur.stages[i - 1].name
                raise LemlabError(f"stage {cur.stages[i].name!r} needs stage {prev!r} fused first: "
                                  f"run the earlier stages (with --fuse)")
            cfg.model = str(cur.base_model)  # same architecture: check against the base
        fig = train_preflight(cfg)
        lines.append(f"stage {i + 1} {cur.stages[i].name}: {cur.stage_dir(i)}")
        lines.append(f"  model {cur.input_model(i)}\n  data {cfg.data}")
        lines.extend("  " + ln for ln in format_figures(fig))
        if cur.needs_fuse(i):
            lines.append(f"  then fuse -> {cur.fused_dir(i)}")
        warn = small_model_warning(fig)
        lines.extend(warn)
        warned = warned or bool(warn)
    return lines, warned


def run(args: argparse.Namespace) -> int:
    cur = load_curriculum(args.file)
    todo = _selected(cur, args.only)
    if not args.dry_run:
        _require_fuse(cur, todo, args.fuse)
    from lemlab.commands.train import show_plan

    plan, warned = preflight(cur, todo)
    if not show_plan(plan, warned, dry_run=args.dry_run, yes=args.yes, state_file=cur.output / STATE_FILE):
        return 0
    return run_stages(cur, todo)


def run_stages(cur: Curriculum, todo: list[int]) -> int:
    from lemlab.commands.train import train_and_follow
    from lemlab.engine.fuse import FuseError, fuse_adapter, is_fused

    progress = CurriculumProgress(cur, todo)
    for i in todo:
        name = cur.stages[i].name
        if stage_done(cur, i):
            print(f"stage {i + 1} {name}: already trained, skipped (delete {cur.stage_dir(i)} to retrain)")
        else:
            progress.begin_training(i)
            print(f"stage {i + 1} {name}: training on {cur.input_model(i)}", file=sys.stderr)
            code = train_and_follow(cur.stage_config(i), label=f"[{i + 1}/{len(cur.stages)} {name}] ")
            if code != 0:
                progress.set(i, "stopped")
                return code
        progress.set(i, "trained", save=False)
        if cur.needs_fuse(i) and not is_fused(cur.fused_dir(i)):
            print(f"stage {i + 1} {name}: fusing into {cur.fused_dir(i)}", file=sys.stderr)
            job = fuse_job(cur, i)
            try:
                fuse_adapter(job.model, job.adapter, job.out, job.log)
            except FuseError as exc:
                progress.save()
                raise LemlabError(str(exc)) from None
        progress.set(i, "fused" if cur.needs_fuse(i) else "trained")
    print(f"curriculum done: state in {cur.output / STATE_FILE}")
    return 0
