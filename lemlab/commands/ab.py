"""`lemlab ab`: run a probe battery under conditions (baseline, kernels, adapters), score every
response and write the research A/B JSONL, resumable after a crash or Ctrl+C.

Condition names: `baseline` and the kernel names on the base model; `<adapter>` and
`<adapter>+<kernel>` on each adapter. The model is loaded once per variant (base, then each
adapter); with adapters, probe lines reach the output during the last adapter's pass and earlier
passes are kept in `<output>.partial.jsonl` so --resume never redoes them.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError

EXIT_INTERRUPTED = 130


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model folder (or a cached Hugging Face id)")
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
    opened = setup["opened"]
    for note in opened.notes:
        print(f"lemlab: {note}", file=sys.stderr)
    if opened.already_complete:
        print(f"{args.output} is already complete ({len(setup['probes'])} probes): nothing to do")
        return 0
    from lemlab.engine.mlx_engine import MLXEngine

    engine = MLXEngine()
    try:
        return _execute(args, setup, engine)
    except LemlabError:
        _drop_if_empty(Path(args.output))  # e.g. the model failed to load: leave nothing behind
        raise
    finally:
        engine.shutdown()


def _drop_if_empty(path: Path) -> None:
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Every check that can fail on user input, before any model is loaded (the TUI calls it
    too). Keys: probes, plan, scorer, sampler, settings, opened, battery."""
    from lemlab.core.ab_store import RunSettings, open_output
    from lemlab.core.adapters import resolve_adapter
    from lemlab.core.conditions import parse_adapter_arg, plan_conditions
    from lemlab.core.kernels import parse_kernel_arg
    from lemlab.core.probes import resolve_battery
    from lemlab.core.scoring import get_scorer
    from lemlab.engine.loading import resolve_model_dir

    sampler = _sampler(args)
    if args.limit is not None and args.limit < 1:
        raise LemlabError("--limit must be at least 1")
    battery = resolve_battery(args.prompts)
    probes = list(battery.probes[: args.limit] if args.limit else battery.probes)
    kernels = [parse_kernel_arg(k) for k in args.kernel]
    adapters = [parse_adapter_arg(a) for a in args.adapter]
    for a in adapters:
        resolve_adapter(a.path)
    resolve_model_dir(args.model)
    scorer = get_scorer(args.scorer)
    plan = plan_conditions(args.model, kernels, adapters)
    settings = RunSettings.for_plan(plan, scorer.id, sampler.as_dict())
    opened = open_output(args.output, settings, probes, resume=args.resume)
    return {
        "probes": probes,
        "plan": plan,
        "scorer": scorer,
        "sampler": sampler,
        "settings": settings,
        "opened": opened,
        "battery": battery,
    }


_prepare = prepare  # the name the TUI battery pane imports


def _sampler(args: argparse.Namespace) -> Any:
    from lemlab.core.engine_api import Sampler

    if args.max_tokens < 1:
        raise LemlabError("--max-tokens must be at least 1")
    if args.temp < 0:
        raise LemlabError("--temp must be 0 (greedy) or more")
    if not 0 < args.top_p <= 1:
        raise LemlabError("--top-p must be in (0, 1]")
    return Sampler(
        temperature=args.temp, top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed
    )


def _execute(args: argparse.Namespace, setup: dict[str, Any], engine: Any) -> int:
    from lemlab.core.ab_store import ABRecorder
    from lemlab.core.runner import BatteryRunner

    runner = BatteryRunner(
        engine,
        setup["probes"],
        setup["plan"],
        setup["scorer"],
        setup["sampler"],
        resume=setup["opened"].state,
        failure_detector=_failure_detector(),
    )
    recorder = ABRecorder(args.output, setup["settings"])
    with _sigint_cancels(runner):
        done = _drive(runner, recorder, setup, args)
    if done.cancelled:
        print(
            f"lemlab: stopped; {len(done.results)}/{len(setup['probes'])} probes are in "
            f"{args.output}. Run the same command with --resume to continue it.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    summary = recorder.finish(
        setup["probes"],
        done.results,
        setup["opened"].prior_seconds + done.elapsed_s,
        summary_extras(setup["plan"], setup["settings"], done.results),
    )
    _print_summary(summary, args.output)
    return 0


def _drive(runner: Any, recorder: Any, setup: dict[str, Any], args: argparse.Namespace) -> Any:
    from lemlab.core import runner as ev

    view = _ProgressView(len(setup["probes"]))
    with view:
        for event in runner.events():
            if isinstance(event, ev.ProbeDone):
                recorder.probe_done(event.probe, event.conditions)
            elif isinstance(event, ev.VariantProbeDone):
                recorder.variant_probe_done(event.variant, event.probe_id, event.conditions)
            elif isinstance(event, ev.VariantLoaded):
                for w in event.info.warnings:
                    view.warn(w)
            elif isinstance(event, ev.RunDone):
                return event
            view.show(event)
    raise AssertionError("the runner ended without RunDone")


class _sigint_cancels:
    """First Ctrl+C: cancel the runner (it stops at the next token, keeping every flushed line);
    a second one interrupts at once."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.runner.cancelled:
            raise KeyboardInterrupt
        print(
            "\nlemlab: stopping after the current response... (Ctrl+C again to quit now)",
            file=sys.stderr,
        )
        self.runner.cancel()

    def __enter__(self) -> _sigint_cancels:
        self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)


def _failure_detector() -> Any:
    try:
        from lemlab.core.failure_modes import detect
    except ImportError:  # the failure-mode module is optional for a run
        return None
    return detect


def summary_extras(plan: Any, settings: Any, results: dict[str, Any]) -> dict[str, Any]:
    """lemlab's keys after the research summary keys."""
    forms: dict[str, str] = {}
    for conds in results.values():
        for name, c in conds.items():
            form = c.get("system_form", "")
            forms[name] = form if forms.get(name, form) == form else "mixed"
    return {
        "scorer": settings.scorer,
        "sampler": settings.sampler,
        "adapters": {v.name: v.adapter for v in plan.variants if v.adapter},
        "kernels": {
            c.kernel.name: c.kernel.sha256
            for c in plan.conditions
            if c.kernel is not None and not c.adapter
        },
        "condition_settings": settings.conditions,
        "system_form": forms,
        "lemlab_version": _version("lemlab"),
        "mlx_lm_version": _version("mlx-lm"),
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


# --- display ---------------------------------------------------------------------------------


class _ProgressView:
    """rich progress on stderr when it is a terminal; one plain line per probe otherwise."""

    def __init__(self, total_probes: int) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.total_probes = total_probes
        self.progress: Any = None
        self.task: Any = None
        self.label = ""

    def __enter__(self) -> _ProgressView:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[tps]}"),
                TextColumn("ETA {task.fields[eta]}"),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("starting", total=None, tps="", eta="-")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def warn(self, text: str) -> None:
        self.console.print(f"lemlab: warning: {text}", markup=False, highlight=False)

    def show(self, event: Any) -> None:
        for line in _event_lines(event, self):
            self.console.print(line, markup=False, highlight=False)

    def update(self, **kw: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, **kw)


def _event_lines(event: Any, view: _ProgressView) -> Iterator[str]:
    from lemlab.core import runner as ev

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
    elif isinstance(event, ev.ProbeDone) and not view.live:
        scores = ", ".join(f"{n} {c['lek_score']:.2f}" for n, c in event.conditions.items())
        yield f"probe {event.index}/{event.total} {event.probe.id}: {scores}"


def _print_summary(summary: dict[str, Any], output: str | Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['total_probes']} probes, {summary['duration']}")
    for col in ("condition", "avg LEK", "Δ baseline", "improved", "regressed", "unchanged"):
        table.add_column(col, justify="left" if col == "condition" else "right")
    for c in summary["conditions"]:
        delta = c.get("delta_vs_baseline")
        table.add_row(
            c["name"],
            f"{c['avg_lek']:.2f}",
            "" if delta is None else f"{delta:+.2f}",
            str(c["improved"]),
            str(c["regressed"]),
            str(c["unchanged"]),
        )
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(f"wrote {output}", markup=False, highlight=False)
