"""`lemlab curriculum FILE`: run training stages in order, fusing each stage's adapter into the
weights the next stage starts from. Fusing writes a full merged copy of the model per stage, so
it needs the explicit --fuse flag. Rerunning skips stages whose adapter finished (done event)
and fuses that already completed.
"""

from __future__ import annotations

import argparse
import sys

from lemlab.core.curriculum import STATE_FILE, Curriculum, load_curriculum, read_state, write_state
from lemlab.core.errors import LemlabError
from lemlab.core.training_events import EVENTS_FILE, load_run


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="curriculum TOML (see examples/)")
    p.add_argument("--fuse", action="store_true",
                   help="allow fusing each stage's adapter into a merged model for the next stage")
    p.add_argument("--only", metavar="STAGE", help="run just this stage (name or number)")
    p.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    p.add_argument("--yes", action="store_true", help="do not ask about small-model warnings")


def stage_done(cur: Curriculum, i: int) -> bool:
    if not (cur.adapter_dir(i) / EVENTS_FILE).is_file():
        return False
    return load_run(cur.adapter_dir(i)).status == "done"


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
    plan, warned = preflight(cur, todo)
    print("\n".join(plan))
    if args.dry_run:
        print(f"dry run: nothing written (state file would be {cur.output / STATE_FILE})")
        return 0
    if warned:
        from lemlab.commands.train import confirm

        confirm("train anyway?", args.yes, "small-model warning above: pass --yes to train anyway")
    return run_stages(cur, todo)


def _statuses(cur: Curriculum) -> dict[str, str]:
    old = {s.get("name"): s.get("status", "pending") for s in read_state(cur).get("stage", [])}
    return {st.name: old.get(st.name, "pending") for st in cur.stages}


def run_stages(cur: Curriculum, todo: list[int]) -> int:
    from lemlab.commands.train import train_and_follow
    from lemlab.core.train_runner import archive_previous_run
    from lemlab.engine.fuse import FuseError, fuse_adapter, is_fused

    statuses = _statuses(cur)
    for i in todo:
        name = cur.stages[i].name
        if stage_done(cur, i):
            print(f"stage {i + 1} {name}: already trained, skipped (delete {cur.stage_dir(i)} to retrain)")
        else:
            archive_previous_run(cur.adapter_dir(i))  # an interrupted attempt: keep its events
            statuses[name] = "training"
            write_state(cur, statuses)
            print(f"stage {i + 1} {name}: training on {cur.input_model(i)}", file=sys.stderr)
            code = train_and_follow(cur.stage_config(i), label=f"[{i + 1}/{len(cur.stages)} {name}] ")
            if code != 0:
                statuses[name] = "stopped"
                write_state(cur, statuses)
                return code
        statuses[name] = "trained"
        if cur.needs_fuse(i) and not is_fused(cur.fused_dir(i)):
            print(f"stage {i + 1} {name}: fusing into {cur.fused_dir(i)}", file=sys.stderr)
            try:
                fuse_adapter(cur.input_model(i), cur.adapter_dir(i), cur.fused_dir(i),
                             cur.stage_dir(i) / "fuse.log")
            except FuseError as exc:
                write_state(cur, statuses)
                raise LemlabError(str(exc)) from None
        if cur.needs_fuse(i):
            statuses[name] = "fused"
        write_state(cur, statuses)
    print(f"curriculum done: state in {cur.output / STATE_FILE}")
    return 0
