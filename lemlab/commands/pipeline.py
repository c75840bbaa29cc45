"""`lemlab pipeline FILE`: run a multi-phase distill -> extract -> (train) pipeline, phase by
phase, resumably. Rerunning skips every step whose output is complete: a distill file with its
summary line, a data folder extracted from the same distill file (sha256 in the state file),
an adapter whose training ended with a done event; an interrupted distill resumes sample by
sample, an interrupted training restarts (mlx-lm keeps no optimizer state).

A phase may start from the previous phase (`start_from`): its adapter (sampled with, and
continued by training) or its fused model (merged dequantized, then sampled and trained on),
and may mix earlier phases' extracted data into its training data (`mix_data`).

Exit status: 0 done; 1 a phase kept no sample (the pipeline stops there: nothing to train
on) or its training failed; 2 bad input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from lemlab.core.atomic import write_text_atomic
from lemlab.core.battery.kernels import parse_kernel_arg
from lemlab.core.battery.probes import battery_json_text, resolve_battery
from lemlab.core.battery.rephrase import rephrase_battery
from lemlab.core.distill import pipeline as pl
from lemlab.core.errors import LemlabError
from lemlab.core.locks import acquire
from lemlab.core.models.adapters import resolve_adapter
from lemlab.core.models.paths import is_fused, resolve_model_dir
from lemlab.core.scoring import get_scorer
from lemlab.core.training.config import load_config_toml
from lemlab.core.training.events import CONFIG_FILE, load_run, run_finished
from lemlab.core.training.runs import archive_previous_run
from lemlab.core.training.stage_eval import EVAL_FILE

EXIT_NOTHING_KEPT = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "exit status: 0 done, 1 a phase kept nothing or its training failed, 2 bad input, "
        "130 interrupted (rerun the same command to resume)"
    )
    p.add_argument("file", help="pipeline TOML (see examples/pipelines/)")
    p.add_argument("--only", metavar="PHASE", help="run just this phase (name or number)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and each step's state; write nothing"
    )
    p.add_argument(
        "--yes", action="store_true", help="do not ask about small-model training warnings"
    )


def run(args: argparse.Namespace) -> int:
    pipe = pl.load_pipeline(args.file)
    todo = [pipe.find_phase(args.only)] if args.only else list(range(len(pipe.phases)))
    check_inputs(pipe, todo)
    batteries = {i: phase_probes(pipe, i) for i in todo}  # checks every battery before any work
    from lemlab.commands.train import show_plan

    plan, warned = plan_lines(pipe, todo, batteries)
    if not show_plan(
        plan, warned, dry_run=args.dry_run, yes=args.yes, state_file=pipe.output / pl.STATE_FILE
    ):
        return 0

    # One run per output folder (its state file): a second one gets one line naming this one.
    with acquire(pipe.output / pl.STATE_FILE, f"pipeline output {pipe.output}"):
        return PipelineRun(pipe).run(todo, batteries)


# --- planning ----------------------------------------------------------------------------------


def check_inputs(pipe: pl.Pipeline, todo: list[int]) -> None:
    """Model, adapter, kernels and scorers: every phase is checked before any work starts."""
    resolve_model_dir(str(pipe.model))
    if pipe.adapter:
        resolve_adapter(pipe.adapter)
    if pipe.eval is not None:
        from lemlab.commands.curriculum import check_eval

        check_eval(pipe.eval)
    for i in todo:
        ph = pipe.phases[i]
        try:
            if ph.kernel:
                parse_kernel_arg(ph.kernel)
            get_scorer(ph.scorer)
        except LemlabError as exc:
            raise LemlabError(f"phase {ph.name!r}: {exc}") from None


def phase_probes(pipe: pl.Pipeline, i: int) -> list[Any]:
    """The phase's battery, rephrased when asked (originals first, then 3 variants a probe)."""
    ph = pipe.phases[i]
    try:
        probes = list(resolve_battery(ph.prompts).probes)
        if ph.rephrase:
            probes = rephrase_battery(probes, seed=ph.rephrase_seed)
    except LemlabError as exc:
        raise LemlabError(f"phase {ph.name!r}: {exc}") from None
    if not probes:
        raise LemlabError(f"phase {ph.name!r}: battery {ph.prompts} has no probes")
    return probes


def plan_lines(
    pipe: pl.Pipeline, todo: list[int], batteries: dict[int, list[Any]]
) -> tuple[list[str], bool]:
    """Plan and current state of each phase; whether any training setting warned."""
    from lemlab.core.training.config import (
        format_figures,
        gradient_figures,
        read_model_facts,
        small_model_warning,
    )

    state = pl.read_state(pipe)
    lines = [
        f"pipeline {pipe.path} on {pipe.model}" + (f" + {pipe.adapter}" if pipe.adapter else "")
    ]
    warned = False
    for i in todo:
        ph = pipe.phases[i]
        lines.append(
            f"phase {i + 1} {ph.name} -> {pipe.phase_dir(i)} [{state.get(ph.name, {}).get('status', 'pending')}]"
        )
        rephrased = " (rephrased x4)" if ph.rephrase else ""
        lines.append(
            f"  distill {len(batteries[i])} probes{rephrased} x {ph.samples} samples, "
            f"kernel {ph.kernel or 'none'}, threshold {ph.threshold}, temperature "
            f"{ph.temperature}, top_p {ph.top_p}, max_tokens {ph.max_tokens}, {ph.scorer}"
        )
        lines.extend(start_lines(pipe, i))
        lines.append(f"  extract dedup {ph.dedup}, split {ph.split} (seed {ph.split_seed})")
        cfg = pipe.train_config(i)
        if cfg is not None:
            fig = gradient_figures(cfg, read_model_facts(pipe.model))
            for j in pipe.mixed_phases(i):
                lines.append(
                    f"  mix in phase {j + 1} {pipe.phases[j].name}'s data "
                    f"{pipe.data_dir(j)} -> {pipe.train_data_dir(i)}"
                )
            cont = " (continuing the previous adapter)" if cfg.resume_adapter_file else ""
            lines.append(f"  train {cfg.iters} iters on {cfg.model}{cont} -> {pipe.adapter_dir(i)}")
            lines += ["    " + ln for ln in format_figures(fig)]
            if pipe.eval is not None:
                base = (
                    " (the baseline has no adapter: the change is since the model)"
                    if ph.start_from == "previous-adapter"
                    else ""
                )
                lines.append(
                    f"  then evaluate: {pipe.eval.describe()}, without and with the "
                    f"adapter -> {pipe.phase_dir(i) / 'eval.jsonl'}{base}"
                )
            warning = small_model_warning(fig)
            lines += warning
            warned = warned or bool(warning)
    return lines, warned


def start_lines(pipe: pl.Pipeline, i: int) -> list[str]:
    """Where a chained phase starts (nothing for a phase on the pipeline's model)."""
    ph = pipe.phases[i]
    if ph.start_from == "previous-adapter":
        return [
            f"  starts from phase {i}'s adapter {pipe.adapter_dir(i - 1)} on {pipe.input_model(i)}"
        ]
    if ph.start_from == "previous-fused":
        return [
            f"  starts from phase {i} fused: {pipe.adapter_dir(i - 1)} merged into "
            f"{pipe.input_model(i - 1)} -> {pipe.fused_dir(i - 1)} (dequantized: the "
            "update is kept exactly)"
        ]
    return []


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def settings_changed(folder: Path, cfg: Any) -> bool:
    """Whether a finished adapter's recorded config differs from the pipeline's current one."""
    from dataclasses import asdict

    try:
        return asdict(load_config_toml(folder / CONFIG_FILE)) != asdict(cfg)
    except LemlabError:
        return False


# --- running -----------------------------------------------------------------------------------


class PipelineRun:
    """Runs phases in order with one engine (started on first use), recording the state file
    after every step so a rerun knows what is complete."""

    def __init__(self, pipe: pl.Pipeline) -> None:
        self.pipe = pipe
        self.rows = pl.read_state(pipe)
        self.engine: Any = None

    def run(self, todo: list[int], batteries: dict[int, list[Any]]) -> int:
        try:
            for i in todo:
                code = self.phase(i, batteries[i])
                print(pl.report_line(i, self.pipe.phases[i].name, self.row(i)))
                if code != 0:
                    return code
        finally:
            if self.engine is not None:
                self.engine.shutdown()
        print(f"pipeline done: state in {self.pipe.output / pl.STATE_FILE}")
        return 0

    def row(self, i: int) -> dict[str, Any]:
        return self.rows.setdefault(self.pipe.phases[i].name, {})

    def save(self, i: int, **values: Any) -> None:
        self.row(i).update(values)
        pl.write_state(self.pipe, self.rows)

    def phase(self, i: int, probes: list[Any]) -> int:
        self.start_point(i)
        code = self.distill(i, probes)
        if code != 0:
            return code
        code = self.extract(i)
        if code != 0 or self.pipe.phases[i].train is None:
            if code == 0:
                self.save(i, status="done")
            return code
        self.mix(i)
        return self.train(i)

    def start_point(self, i: int) -> None:
        """A chained phase needs the previous phase's adapter, fused when asked (once)."""
        pipe, ph = self.pipe, self.pipe.phases[i]
        if ph.start_from == "base":
            return
        prev = pipe.adapter_dir(i - 1)
        if not run_finished(prev):
            raise LemlabError(
                f"phase {ph.name!r} starts from phase {i}'s adapter, which has not "
                f"finished training ({prev}): run phase {i} first"
            )
        if ph.start_from == "previous-fused":
            self.fuse(i - 1)

    def fuse(self, j: int) -> None:
        from lemlab.engine.fuse import FuseError, fuse_adapter

        pipe = self.pipe
        out = pipe.fused_dir(j)
        label = f"[{j + 1}/{len(pipe.phases)} {pipe.phases[j].name}] "
        if is_fused(out):
            return
        if self.engine is not None:
            self.engine.unload().result()  # the merge loads the model twice: free the sampler's
        print(
            f"{label}fusing {pipe.adapter_dir(j)} into {pipe.input_model(j)} -> {out} "
            "(dequantized)",
            file=sys.stderr,
        )
        try:
            res = fuse_adapter(
                pipe.input_model(j), pipe.adapter_dir(j), out, pipe.phase_dir(j) / "fuse.log"
            )
        except FuseError as exc:
            raise LemlabError(str(exc)) from None
        print(f"{label}{res.summary()}", file=sys.stderr)
        self.save(j, fused=str(out), fused_val_loss=res.val_loss_fused)

    def mix(self, i: int) -> None:
        """Own data first, then each mixed phase's, into train-data/ (rewritten when changed)."""
        pipe = self.pipe
        sources = [pipe.data_dir(i)] + [pipe.data_dir(j) for j in pipe.mixed_phases(i)]
        counts = {}
        for split in ("train.jsonl", "valid.jsonl"):
            parts = []
            for src in sources:
                if not (src / split).is_file():
                    raise LemlabError(
                        f"phase {pipe.phases[i].name!r}: mix_data needs {src / split}: "
                        "run that phase first"
                    )
                text = (src / split).read_text(encoding="utf-8")
                parts.append(text if not text or text.endswith("\n") else text + "\n")
            joined = "".join(parts)
            target = pipe.train_data_dir(i) / split
            if not target.is_file() or target.read_text(encoding="utf-8") != joined:
                write_text_atomic(target, joined)
            counts[split.split(".")[0]] = joined.count("\n")
        self.save(
            i,
            mixed_from=[pipe.phases[j].name for j in pipe.mixed_phases(i)],
            train_lines=counts["train"],
            valid_lines=counts["valid"],
        )

    def distill(self, i: int, probes: list[Any]) -> int:
        from lemlab.commands.distill import execute_distill, prepare_distill

        pipe, ph = self.pipe, self.pipe.phases[i]
        existed = pipe.distill_file(i).exists()
        if ph.rephrase:  # kept beside the outputs so the phase's prompts can be read and reused
            text, target = battery_json_text(probes), pipe.prompts_file(i)
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                write_text_atomic(target, text)
        adapter = pipe.sampling_adapter(i)
        job = prepare_distill(
            model=str(pipe.input_model(i)),
            prompts=probes,
            output=pipe.distill_file(i),
            adapter=str(adapter) if adapter else None,
            kernel=ph.kernel or None,
            resume=True,
            **ph.distill_settings(),
        )
        job.battery = str(pipe.prompts_file(i)) if ph.rephrase else ph.prompts
        label = f"[{i + 1}/{len(pipe.phases)} {ph.name}] "
        for note in job.state.notes if existed else []:
            print(f"lemlab: {label}{note}", file=sys.stderr)
        if job.state.already_complete:
            print(f"{label}distill already complete: {pipe.distill_file(i)}", file=sys.stderr)
            summary = job.state.summary
        else:
            self.save(i, status="distilling")
            outcome = execute_distill(job, self._engine(), label)
            if outcome.cancelled:
                self.save(i, status="stopped")
                return outcome.exit_code
            summary = outcome.summary
        assert summary is not None
        return self._distilled(i, summary)

    def _distilled(self, i: int, summary: dict[str, Any]) -> int:
        figures = {
            k: summary[k] for k in ("total_generated", "total_kept", "keep_rate", "avg_kept_score")
        }
        self.save(
            i,
            status="distilled",
            generated=figures["total_generated"],
            kept=figures["total_kept"],
            keep_rate=figures["keep_rate"],
            avg_kept_score=figures["avg_kept_score"],
        )
        if figures["total_kept"] == 0:
            self.save(i, status="nothing-kept")
            ph = self.pipe.phases[i]
            print(
                f"lemlab: WARNING: phase {ph.name!r}: no sample reached the threshold {ph.threshold} "
                f"({figures['total_generated']} generated): stopping the pipeline. Lower the "
                "threshold in the pipeline file, delete the phase's distill.jsonl and rerun.",
                file=sys.stderr,
            )
            return EXIT_NOTHING_KEPT
        return 0

    def extract(self, i: int) -> int:
        from lemlab.commands.extract import extract_file

        pipe, ph = self.pipe, self.pipe.phases[i]
        sha = file_sha256(pipe.distill_file(i))
        data = pipe.data_dir(i)
        if self.row(i).get("distill_sha256") == sha and all(
            (data / f).is_file() for f in ("train.jsonl", "valid.jsonl")
        ):
            return 0  # already extracted from this very distill file
        result = extract_file(pipe.distill_file(i), data, ph.dedup, ph.split, ph.split_seed)
        if result.errors:
            raise LemlabError(
                f"phase {ph.name!r}: {result.errors[0]} (the distill file is damaged)"
            )
        s = result.stats
        self.save(
            i,
            status="extracted",
            examples=s.examples,
            train=s.train,
            valid=s.valid,
            distill_sha256=sha,
        )
        return 0

    def train(self, i: int) -> int:
        from lemlab.commands.train import TrainingFailed, preflight, train_and_follow

        pipe, ph = self.pipe, self.pipe.phases[i]
        folder = pipe.adapter_dir(i)
        cfg = pipe.train_config(i)
        assert cfg is not None
        done = run_finished(folder)
        if done and settings_changed(folder, cfg):
            print(
                f"lemlab: note: phase {ph.name!r} was trained with other settings than the file's "
                f"now; delete {folder} to retrain",
                file=sys.stderr,
            )
        if not done:
            preflight(cfg)  # the data folder exists now: check it before starting
            if self.engine is not None:
                self.engine.unload().result()  # free the sampling model's memory for training
            archive_previous_run(folder)  # an interrupted attempt: keep its events
            self.save(i, status="training")
            try:
                code = train_and_follow(cfg, label=f"[{i + 1}/{len(pipe.phases)} {ph.name}] ")
            except TrainingFailed:
                self.save(i, status="failed")
                raise
            if code != 0:
                self.save(i, status="stopped")
                return code
        run = load_run(folder)
        final = run.train_points[-1][1] if run.train_points else None
        val = run.val_points[-1][1] if run.val_points else None
        self.save(i, status="done", adapter=str(folder), final_loss=final, final_val_loss=val)
        return self.evaluate(i)

    def evaluate(self, i: int) -> int:
        """The [eval] battery on the phase's start without and with its adapter (130: stopped)."""
        from lemlab.commands.stage_eval import EXIT_INTERRUPTED, EvalInterrupted, run_stage_eval

        pipe = self.pipe
        if pipe.eval is None:
            return 0
        if self.engine is not None:
            self.engine.unload().result()  # the evaluation runs in its own process
        out = pipe.phase_dir(i) / EVAL_FILE
        label = f"[{i + 1}/{len(pipe.phases)} {pipe.phases[i].name}] "
        try:
            scores = run_stage_eval(pipe.eval, pipe.input_model(i), pipe.adapter_dir(i), out, label)
        except EvalInterrupted:
            return EXIT_INTERRUPTED
        self.save(i, eval_file=str(out), battery_before=scores.before, battery_after=scores.after)
        return 0

    def _engine(self) -> Any:
        if self.engine is None:
            from lemlab.engine.router import EngineRouter

            self.engine = EngineRouter()
        return self.engine
