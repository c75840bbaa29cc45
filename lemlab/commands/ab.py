"""`lemlab ab`: run a probe battery under conditions (baseline, kernels, adapters), score every
response and write the research A/B JSONL, resumable after a crash or Ctrl+C.

Condition names: `baseline` and the kernel names on the base model; `<adapter>` and
`<adapter>+<kernel>` on each adapter. The model is loaded once per variant (base, then each
adapter); with adapters, probe lines reach the output during the last adapter's pass and earlier
passes are kept in `<output>.partial.jsonl` so --resume never redoes them.

Servers. `--model openai:URL#MODEL` (or `--endpoint NAME`, a `[endpoints.NAME]` table of
config.toml) runs on an OpenAI-compatible server; give several to spread the probes over them,
each with up to `--max-in-flight` requests at once (default: the endpoint's `max_in_flight`,
else 1). One probe, with all its conditions, runs on one endpoint and its line is written once;
connection errors and 5xx are retried with backoff (`--retries`, `--retry-delay`), possibly on
another endpoint. Lines then arrive in completion order; readers and --resume match them by id
and the summary is computed in battery order. Each line records the endpoint that answered
(`endpoint`: its config name or host:port, never a key). Adapters are sent per request
(mlx_lm.server's `adapters` field) and tried once per endpoint first: a server that cannot load
one refuses the run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
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
    sampler_from_args,
    server_slots,
)
from lemlab.core.ab.prepare import ABSetup, failure_detector, prepare_ab, summary_extras
from lemlab.core.ab.runner import BatteryRunner
from lemlab.core.ab.store import ABRecorder, sidecar_path
from lemlab.core.remote.dispatch import DispatchError
from lemlab.core.remote.parallel_runs import ParallelBatteryRunner
from lemlab.core.safe_text import visible_line

EXIT_INTERRUPTED = 130
EXIT_RUN_FAILED = 3  # a server failed for good mid-run: the lines so far are kept (--resume)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "exit status: 0 done, 2 bad input, 3 a server failed for good mid-run, 130 "
        "interrupted (rerun the same command with --resume after 3 or 130)"
    )
    add_model_arguments(p, spread="the probes over several servers", unit="probe")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="LoRA adapter folder or checkpoint file; repeat for several",
    )
    p.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="kernel text file used as the system message; repeat for several",
    )
    p.add_argument(
        "--prompts",
        required=True,
        metavar="BATTERY",
        help="battery file (.json/.jsonl/.toml) or shipped name such as ccp6",
    )
    p.add_argument("--output", required=True, metavar="OUT", help="A/B JSONL file to write")
    p.add_argument("--max-tokens", type=int, default=1024, help="per response (default 1024)")
    p.add_argument("--scorer", default="v2", help="scorer id (default v2)")
    p.add_argument("--temp", type=float, default=0.0, help="temperature (default 0: greedy)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (1: off)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (per probe and condition)")
    p.add_argument("--resume", action="store_true", help="continue OUT where it stopped")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N probes")


def run(args: argparse.Namespace) -> int:
    setup = prepare(args)
    opened = setup.opened
    print_notes(opened.notes)
    if opened.already_complete:
        print(f"{args.output} is already complete ({len(setup.probes)} probes): nothing to do")
        return 0
    try:
        if setup.remote:
            return _run_remote(args, setup)
        return _run_local(args, setup)
    except BaseException:  # also Ctrl+C or a full disk while the model loads
        _drop_if_empty(Path(args.output))  # e.g. the model failed to load: leave nothing behind
        raise
    finally:
        if opened.lock is not None:  # not when the traceback lets go of it: callers go on
            opened.lock.release()


def _run_local(args: argparse.Namespace, setup: ABSetup) -> int:
    with local_engine() as engine:
        runner = BatteryRunner(
            engine,
            setup.probes,
            setup.plan,
            setup.scorer,
            setup.sampler,
            resume=setup.opened.state,
            failure_detector=failure_detector(),
        )
        return _execute(args, setup, runner)


def _run_remote(args: argparse.Namespace, setup: ABSetup) -> int:
    """Probes spread over the endpoints through lemlab.core.remote.dispatch."""
    plan = setup.plan
    variants = [(v.name, v.adapter) for v in plan.variants]
    with server_slots(setup.specs, variants, args.max_in_flight) as (slots, warnings):
        for w in warnings:
            print(f"lemlab: warning: {visible_line(w)}", file=sys.stderr)
        setup.endpoints = [s.label for s in slots]
        runner = ParallelBatteryRunner(
            slots,
            setup.probes,
            plan,
            setup.scorer,
            setup.sampler,
            resume=setup.opened.state,
            failure_detector=failure_detector(),
            retry=retry_policy(args),
        )
        try:
            return _execute(args, setup, runner)
        except DispatchError as exc:
            done = len(runner.state.complete)
            print(f"lemlab: error: {visible_line(exc)}", file=sys.stderr)  # quotes the server
            print(
                f"lemlab: stopped; {done}/{len(setup.probes)} probes are in {args.output}. "
                "Run the same command with --resume when the server is back.",
                file=sys.stderr,
            )
            return EXIT_RUN_FAILED


def _drop_if_empty(path: Path) -> None:
    """Remove an output that holds nothing yet, unless its sidecar keeps partial results."""
    try:
        side = sidecar_path(path)
        if path.stat().st_size == 0 and (not side.exists() or side.stat().st_size == 0):
            path.unlink()
            side.unlink(missing_ok=True)
    except OSError:
        pass


def prepare(args: argparse.Namespace) -> ABSetup:
    """The flags, checked (lemlab.core.ab.prepare.prepare_ab does the rest)."""
    sampler = sampler_from_args(args)
    check_dispatch_args(args)
    return prepare_ab(
        model=given_specs(args),
        prompts=args.prompts,
        output=args.output,
        sampler=sampler,
        kernels=args.kernel,
        adapters=args.adapter,
        scorer=args.scorer,
        resume=args.resume,
        limit=args.limit,
    )


def _execute(args: argparse.Namespace, setup: ABSetup, runner: Any) -> int:
    recorder = ABRecorder(args.output, setup.settings)
    with SigintCancels(runner, "the current response"):
        done = _drive(runner, recorder, setup, args)
    if done.cancelled:
        print(
            f"lemlab: stopped; {len(done.results)}/{len(setup.probes)} probes are in "
            f"{args.output}. Run the same command with --resume to continue it.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    summary = recorder.finish(
        setup.probes,
        done.results,
        setup.opened.prior_seconds + done.elapsed_s,
        summary_extras(setup.plan, setup.settings, done.results, setup.endpoints),
    )
    _print_summary(summary, args.output)
    return 0


def _drive(runner: Any, recorder: Any, setup: ABSetup, args: argparse.Namespace) -> Any:
    from lemlab.core.ab import runner as ev

    view = _ProgressView()
    with view:
        for event in runner.events():
            if isinstance(event, ev.ProbeDone):
                recorder.probe_done(event.probe, event.conditions, endpoint=event.endpoint)
            elif isinstance(event, ev.VariantProbeDone):
                recorder.variant_probe_done(event.variant, event.probe_id, event.conditions)
            elif isinstance(event, ev.VariantLoaded):
                for w in event.info.warnings:
                    view.warn(w)
            elif isinstance(event, ev.RunDone):
                return event
            view.show(event)
    raise AssertionError("the runner ended without RunDone")


# --- display ---------------------------------------------------------------------------------


class _ProgressView(RunProgress):
    """rich progress on stderr when it is a terminal; one plain line per probe otherwise."""

    def __init__(self) -> None:
        super().__init__(
            "starting", ["{task.fields[tps]}", "ETA {task.fields[eta]}"], {"tps": "", "eta": "-"}
        )
        self.label = ""

    def warn(self, text: str) -> None:
        self.print(f"lemlab: warning: {text}")

    def show(self, event: Any) -> None:
        for line in _event_lines(event, self):
            self.print(line)


def _event_lines(event: Any, view: _ProgressView) -> Iterator[str]:
    from lemlab.core.ab import runner as ev

    if isinstance(event, ev.RunStarted):
        view.update(total=event.total_units or 1)
        if event.resumed_probes:
            yield f"resuming: {event.resumed_probes} probes kept, {event.todo_probes} to run"
    elif isinstance(event, ev.VariantLoading):
        view.update(description=f"loading {event.variant.label}")
    elif isinstance(event, ev.VariantLoaded) and event.system_form == "user_prefix":
        yield ("the chat template rejects a system role: kernels go at the top of the user turn")
    elif isinstance(event, ev.ProbeStarted):
        view.label = f"probe {event.index}/{event.total} {event.probe.id}"
    elif isinstance(event, ev.ConditionStarted):
        view.update(description=f"{view.label} · {event.condition}")
    elif isinstance(event, ev.ConditionProgress):
        view.update(tps=f"{event.tokens_per_s:.0f} tok/s")
    elif isinstance(event, ev.ConditionDone):
        p = event.progress
        eta = f"{p.eta_s:.0f}s" if p.eta_s is not None else "-"
        view.update(completed=p.done_units, tps=f"{event.stats.generation_tps:.0f} tok/s", eta=eta)
    elif isinstance(event, ev.VariantProbeDone) and not view.live:
        # A run with adapters goes variant by variant: say so during the earlier passes too.
        scores = ", ".join(f"{n} {c['lek_score']:.2f}" for n, c in event.conditions.items())
        yield f"{event.variant or 'base'} pass: {view.label}: {scores}"
    elif isinstance(event, ev.ProbeDone) and view.live:
        view.update(completed=event.progress.done_units)  # runs over endpoints: per probe
    elif isinstance(event, ev.ProbeDone):
        scores = ", ".join(f"{n} {c['lek_score']:.2f}" for n, c in event.conditions.items())
        yield f"probe {event.index}/{event.total} {event.probe.id}: {scores}"


def _print_summary(summary: dict[str, Any], output: str | Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{summary['total_probes']} probes, {summary['duration']}")
    for col in ("condition", "avg LEK", "Δ baseline", "improved", "regressed", "unchanged"):
        table.add_column(col, justify="left" if col == "condition" else "right")
    for c in summary["conditions"]:
        delta = c.get("delta_vs_baseline")
        table.add_row(
            Text(visible_line(c["name"])),  # a user's condition name: never markup
            f"{c['avg_lek']:.2f}",
            "" if delta is None else f"{delta:+.2f}",
            str(c["improved"]),
            str(c["regressed"]),
            str(c["unchanged"]),
        )
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"wrote {output}", markup=False, highlight=False)
