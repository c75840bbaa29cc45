"""`lemlab distill`: self-distillation. Sample N responses per probe (optionally with a kernel as
the system message), score each, and keep those scoring >= --threshold as training lines in the
research self-distill JSONL; a summary line ends the file. Resumable with --resume.

Exit status: 0 done; 1 done but NOTHING passed the threshold (the file and its summary are
written, with total_kept 0, so scripts and `lemlab pipeline` can stop before training on
nothing); 2 bad input, or OUT exists without --resume; 3 a server failed for good mid-run;
130 interrupted (resume it after 3 or 130).

Servers: `--model openai:URL#MODEL` or `--endpoint NAME`, repeated for several servers of one
model, spreads the samples over them (one unit = one sample, whose seed comes from its probe
and index, so a retried sample is the same request); lines arrive in completion order and
resume matches them by (probe, sample). Kept lines record the server in meta `endpoint`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from lemlab.commands.run_support import (
    RunProgress,
    SigintCancels,
    add_model_arguments,
    check_dispatch_args,
    given_specs,
    local_engine,
    print_notes,
    retry_policy,
    server_slots,
)
from lemlab.core.distill import output as d
from lemlab.core.distill.prepare import DistillJob, prepare_distill
from lemlab.core.distill.runner import DistillDone, DistillRunner, SampleScored
from lemlab.core.remote.dispatch import DispatchError
from lemlab.core.remote.parallel_runs import ParallelDistillRunner
from lemlab.core.safe_text import visible_line

EXIT_NOTHING_KEPT = 1
EXIT_RUN_FAILED = 3  # a server failed for good mid-run: the samples so far are kept (--resume)
EXIT_INTERRUPTED = 130


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "exit status: 0 done, 1 done but no sample reached the threshold (summary "
        "written), 2 bad input, 3 a server failed for good mid-run, 130 interrupted "
        "(rerun with --resume after 3 or 130)"
    )
    add_model_arguments(p, spread="samples over servers", unit="sample")
    p.add_argument("--adapter", help="LoRA adapter folder or checkpoint file")
    p.add_argument(
        "--kernel",
        metavar="FILE",
        help="kernel text used as the system message (never stored in the output)",
    )
    p.add_argument(
        "--prompts", required=True, metavar="BATTERY", help="battery file or shipped name"
    )
    p.add_argument("--output", required=True, metavar="OUT", help="self-distill JSONL to write")
    p.add_argument(
        "--samples", type=int, default=d.DEFAULT_SAMPLES, help="samples per probe (default 10)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=d.DEFAULT_THRESHOLD,
        help="keep samples scoring >= this (default 24.0; Phase 0 used 15.0)",
    )
    p.add_argument(
        "--max-tokens", type=int, default=d.DEFAULT_MAX_TOKENS, help="per sample (default 4096)"
    )
    p.add_argument("--temperature", type=float, default=d.DEFAULT_TEMPERATURE, help="default 0.8")
    p.add_argument("--top-p", type=float, default=d.DEFAULT_TOP_P, help="default 0.95")
    p.add_argument(
        "--seed",
        type=int,
        default=d.DEFAULT_SEED,
        help="base seed; each sample's seed derives from (seed, probe id, index) (default 42)",
    )
    p.add_argument("--scorer", default=d.DEFAULT_SCORER, help="scorer id (default v2-distill)")
    p.add_argument(
        "--truncated",
        choices=d.TRUNCATED_MODES,
        default=d.DEFAULT_TRUNCATED,
        help="samples that hit --max-tokens end mid-reply: keep them, marked "
        "truncated in meta (default, as the research tool did), or drop them",
    )
    p.add_argument("--limit", type=int, metavar="N", help="only the first N probes")
    p.add_argument("--resume", action="store_true", help="continue OUT where it stopped")


@dataclass
class DistillOutcome:
    summary: dict[str, Any] | None  # None when interrupted
    cancelled: bool = False
    failed: bool = False  # a server failed for good

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_RUN_FAILED
        if self.cancelled or self.summary is None:
            return EXIT_INTERRUPTED
        return EXIT_NOTHING_KEPT if self.summary["total_kept"] == 0 else 0


def run(args: argparse.Namespace) -> int:
    check_dispatch_args(args)
    job = prepare_distill(
        model=given_specs(args),
        prompts=args.prompts,
        output=args.output,
        adapter=args.adapter,
        kernel=args.kernel,
        resume=args.resume,
        samples=args.samples,
        threshold=args.threshold,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        scorer=args.scorer,
        truncated=args.truncated,
        limit=args.limit,
    )
    print_notes(job.state.notes)
    if job.state.already_complete:
        print(f"{job.output} is already complete: nothing to do")
        return DistillOutcome(job.state.summary).exit_code
    warning = job.settings.greedy_warning()
    if warning:
        print(f"lemlab: warning: {warning}", file=sys.stderr)
    try:
        if job.remote:
            outcome = execute_distill_remote(job, args)
        else:
            with local_engine() as engine:
                outcome = execute_distill(job, engine)
    except BaseException:
        d.drop_unstarted(job.output)  # e.g. the model failed to load: leave nothing behind
        raise
    finally:
        if job.state.lock is not None:  # not when the traceback lets go of it: callers go on
            job.state.lock.release()
    report_outcome(job, outcome)
    return outcome.exit_code


def execute_distill_remote(job: DistillJob, args: argparse.Namespace) -> DistillOutcome:
    """Samples spread over the job's servers (lemlab.core.remote.dispatch); lines as samples finish."""
    variants: list[tuple[str, str | None]] = [("", job.settings.adapter)]
    with server_slots(job.specs or [], variants, args.max_in_flight) as (slots, warnings):
        runner = ParallelDistillRunner(
            slots,
            job.probes,
            job.settings,
            job.scorer,
            job.kernel_text,
            job.state,
            retry=retry_policy(args),
        )
        try:
            return _drive(
                job,
                runner,
                DistillView(),
                warnings,
                {"battery": job.battery, "endpoints": [s.label for s in slots]},
            )
        except DispatchError as exc:
            print(f"lemlab: error: {visible_line(exc)}", file=sys.stderr)  # quotes the server
            return DistillOutcome(None, failed=True)


def execute_distill(job: DistillJob, engine: Any, label: str = "") -> DistillOutcome:
    """Run the job on a started engine: write lines as samples finish, the summary at the end.
    Ctrl+C stops after the current token (the sample in progress is redone on resume)."""
    runner = DistillRunner(engine, job.probes, job.settings, job.scorer, job.kernel_text, job.state)
    return _drive(job, runner, DistillView(label), [], {"battery": job.battery})


def _drive(
    job: DistillJob, runner: Any, view: DistillView, warnings: list[str], extra: dict[str, Any]
) -> DistillOutcome:
    """Record and show the runner's events (kept lines name the server of a run spread over
    servers); the summary line unless the run was cancelled."""
    recorder = d.DistillRecorder(job.output, job.settings)
    done: DistillDone | None = None
    with SigintCancels(runner), view:
        for w in warnings:
            view.say(f"warning: {w}")
        for event in runner.events():
            if isinstance(event, SampleScored):
                recorder.sample_done(event.sample, event.wall_s, runner.last_endpoint)
            elif isinstance(event, DistillDone):
                done = event
            view.show(event)
    assert done is not None
    if done.cancelled:
        return DistillOutcome(None, cancelled=True)
    summary = recorder.finish(len(job.probes), job.state.records, job.state.prior_seconds, extra)
    return DistillOutcome(summary)


def report_outcome(job: DistillJob, outcome: DistillOutcome) -> None:
    s = outcome.summary
    if s is None:
        kept = job.state.kept
        print(
            f"lemlab: stopped; {len(job.state.records)} samples generated, {kept} kept in "
            f"{job.output}. Run the same command with --resume to continue it.",
            file=sys.stderr,
        )
        return
    print(
        f"{s['total_kept']}/{s['total_generated']} samples kept ({s['keep_rate']:.1f}%), "
        f"avg kept score {s['avg_kept_score']:.2f}, {s['probes']} probes, {s['duration_s']:.1f}s"
    )
    print(f"wrote {job.output}")
    cut = s.get("hit_token_limit", 0)
    if cut:
        what = (
            "dropped"
            if s.get("truncated") == "drop"
            else "kept where they scored enough, "
            "marked truncated in meta; a model trained on them learns the cut-off (pass "
            "--truncated drop, or raise --max-tokens)"
        )
        print(
            f"lemlab: note: {cut}/{s['total_generated']} samples hit --max-tokens "
            f"{s['max_tokens']} mid-reply: {what}",
            file=sys.stderr,
        )
    if s["total_kept"] == 0:
        print(
            f"lemlab: WARNING: no sample reached the threshold {s['threshold']} "
            f"(best score {best_score(job.state):.2f}): the output holds no training lines. "
            "Lower --threshold or change the kernel/sampling.",
            file=sys.stderr,
        )


def best_score(state: d.DistillState) -> float:
    return max((r.lek_score for r in state.records.values()), default=0.0)


class DistillView(RunProgress):
    """Progress on stderr: a rich bar at a terminal, else one plain line per finished probe."""

    def __init__(self, label: str = "") -> None:
        super().__init__(label + "loading", ["{task.fields[rate]}"], {"rate": ""})
        self.label = label

    def say(self, text: str) -> None:
        self.print(self.label + text)

    def show(self, event: Any) -> None:
        from lemlab.core.distill import runner as ev

        if isinstance(event, ev.DistillStarted) and event.counts.generated:
            c = event.counts
            self.say(
                f"resuming: {c.generated} samples done ({c.kept} kept), {c.total - c.generated} to go"
            )
        elif isinstance(event, ev.ModelLoaded):
            for w in event.info.warnings:
                self.say(f"warning: {w}")
        elif isinstance(event, ev.SampleStarted) and self.progress is not None:
            desc = f"{self.label}probe {event.probe_index}/{event.probes} {event.probe.id} · sample {event.sample_idx + 1}"
            self.update(description=desc)
        elif isinstance(event, ev.SampleScored):
            self._scored(event)

    def _scored(self, event: Any) -> None:
        c, s = event.counts, event.sample
        rate = f"kept {c.kept}/{c.generated} ({c.keep_rate:.1f}%)"
        if self.progress is not None:
            self.update(total=c.total, completed=c.generated, rate=rate)
            return
        self.say(
            f"probe {event.probe_index}/{event.probes} {s.probe.id} sample {s.sample_idx + 1}: "
            f"score {s.lek_score:.2f} {'kept' if s.kept else 'rejected'} · {rate}"
        )
