"""`lemlab train`: a LoRA training run in a child process, with an events log and live progress.

Settings resolve as defaults (mlx-lm's, except the safe small-model ones: 400 iterations,
batch 1, LR 5e-6, ~30% of the layers) < `-c CONFIG.toml` < flags, are checked (model folder,
data lines, layer count), written to ADAPTER/lemlab-train.toml, and then run by
`python -m lemlab.engine.train_child`. Ctrl+C asks the child to save and stop (exit 130).
`--stop RUN` stops a run started elsewhere (the TUI's runs outlive it); `--continue RUN`
starts a new run from RUN's last checkpoint (weights only, said so before it starts).
A question (warning, earlier run) is asked only at a terminal; otherwise one line names --yes.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.locks import ensure_free
from lemlab.core.safe_text import visible, visible_line
from lemlab.core.training.config import (
    GradientFigures,
    TrainingConfig,
    default_num_layers,
    format_figures,
    read_config_toml,
    read_model_facts,
    resolve_config,
    small_model_warning,
)
from lemlab.core.training.events import EVENTS_FILE, RunSource, RunWatcher
from lemlab.core.training.preflight import preflight_training as preflight
from lemlab.core.training.resume import plan_continue
from lemlab.core.training.runs import archive_previous_run, previous_run
from lemlab.core.training.summary import event_line, summary_lines
from lemlab.engine.train_runner import (
    EXIT_STOPPED,
    record_lost_trainer,
    start_training,
    stop_run,
    trainer_check,
)

RESUME_NOTE = (
    "--resume-adapter-file restores adapter weights only: optimizer state and the iteration "
    "count start fresh (mlx-lm saves no optimizer state)"
)

# flag name -> (type, help). Flags left out take the TOML value, else mlx-lm's default.
_VALUE_FLAGS: dict[str, tuple[Any, str]] = {
    "iters": (int, "optimizer steps (default 400; mlx-lm's is 1000)"),
    "batch_size": (int, "examples per step (default 1; mlx-lm's is 4)"),
    "num_layers": (
        int,
        "layers to train, from the top; -1 = all (default ~30%% of the model's; mlx-lm's is 16)",
    ),
    "learning_rate": (float, "Adam learning rate (default 5e-6; mlx-lm's is 1e-5)"),
    "rank": (int, "LoRA rank (default 8)"),
    "scale": (float, "LoRA scale (default 20.0)"),
    "dropout": (float, "LoRA dropout (default 0.0)"),
    "max_seq_length": (int, "truncate longer examples (default 2048)"),
    "save_every": (int, "checkpoint NNNNNNN_adapters.safetensors every N steps (default 100)"),
    "steps_per_eval": (int, "validate every N steps (default 200)"),
    "steps_per_report": (int, "report train loss every N steps (default 10)"),
    "seed": (int, "random seed (default 0)"),
    "val_batches": (int, "validation batches, -1 = all (default 25)"),
}


class TrainingFailed(LemlabError):
    """The run started but ended in an error event (or without a final event)."""

    exit_code = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "Small-model warning: for models under ~3B parameters or 30 layers, lemlab warns when\n"
        "the settings resemble the run that collapsed a 1B model (LR >= 1e-5, > 50% of layers,\n"
        "batch >= 4, >= 1,000 effective steps) and suggests LR 5e-6, ~30% of layers, batch 1,\n"
        "<= 400 iterations (the defaults). It asks before training at a terminal; elsewhere it\n"
        "exits 2 with one line unless --yes is given.\n\n"
        "Exit status: 0 done, 1 the run failed, 2 bad input or a refused question, 130 stopped.\n\n"
        f"Note: {RESUME_NOTE}."
    )
    p.add_argument("--model", help="model folder (local)")
    p.add_argument("--data", help="folder with train.jsonl and valid.jsonl")
    p.add_argument("--adapter-path", help="output folder (adapters, checkpoints, events.jsonl)")
    p.add_argument("-c", "--config", help="TOML file with a [train] table (paths relative to it)")
    for name, (kind, help_text) in _VALUE_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, help=help_text)
    p.add_argument(
        "--grad-checkpoint", action="store_true", default=None, help="trade compute for memory"
    )
    p.add_argument(
        "--mask-prompt", action="store_true", default=None, help="loss on the reply only"
    )
    p.add_argument(
        "--resume-adapter-file", help="start from these adapter weights (weights only; see below)"
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="do not ask: train despite warnings, archive an earlier run",
    )
    p.add_argument(
        "--stop",
        metavar="RUN",
        help="stop the run in adapter folder RUN (saves adapters, keeps checkpoints) and exit",
    )
    p.add_argument(
        "--continue",
        dest="continue_run",
        metavar="RUN",
        help="new run from RUN's last checkpoint, for the iterations left (weights only; "
        "--adapter-path defaults to RUN-continued)",
    )


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    toml_values = read_config_toml(args.config) if args.config else {}
    if getattr(args, "continue_run", None):
        # The earlier run's settings, then the config file and flags over them.
        plan = plan_continue(args.continue_run, args.adapter_path)
        print("\n".join(plan.note_lines))
        toml_values = {**plan.values, **toml_values}
    flags: dict[str, Any] = {name: getattr(args, name) for name in _VALUE_FLAGS}
    flags.update(grad_checkpoint=args.grad_checkpoint, mask_prompt=args.mask_prompt)
    for name in ("model", "data", "adapter_path", "resume_adapter_file"):
        value = getattr(args, name)
        flags[name] = str(Path(value).expanduser().resolve()) if value else None
    cfg = resolve_config(toml_values, flags)
    for name, flag in (("model", "--model"), ("data", "--data")):
        if not getattr(cfg, name):
            raise LemlabError(f"{flag} is required (or set {name} in the -c config)")
    if flags.get("num_layers") is None and "num_layers" not in toml_values:
        cfg = _fit_default_layers(cfg)
    return cfg


def _fit_default_layers(cfg: TrainingConfig) -> TrainingConfig:
    """No --num-layers given: train ~30% of the model's layers (the safe default), which the
    plan printed next shows as "trained layers N / M"."""
    model = Path(cfg.model)
    if not (model / "config.json").is_file():
        return cfg  # preflight reports the missing model
    layers = read_model_facts(model).num_layers
    return dataclasses.replace(cfg, num_layers=default_num_layers(layers)) if layers else cfg


def confirm(question: str, yes: bool, refusal: str) -> None:
    """Ask at a terminal; anywhere else (a pipe, a script, output redirected so the question
    would not be seen) never wait: raise `refusal`, one line naming --yes (exit 2)."""
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise LemlabError(refusal)
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise LemlabError("cancelled")


def show_plan(
    lines: list[str], warned: bool, *, dry_run: bool, yes: bool, state_file: Path
) -> bool:
    """Print a staged plan (curriculum, pipeline); False on a dry run, else True once any
    small-model warning is confirmed."""
    print("\n".join(lines))
    if dry_run:
        print(f"dry run: nothing written (state file would be {state_file})")
        return False
    if warned:
        confirm("train anyway?", yes, "small-model warning above: pass --yes to train anyway")
    return True


def print_plan(cfg: TrainingConfig, fig: GradientFigures, out: Any = None) -> list[str]:
    """Print the effective-gradient figures and any warning; return the warning lines."""
    out = out or sys.stdout
    print(f"training {cfg.model}\n  data {cfg.data}\n  adapters {cfg.adapter_path}", file=out)
    for line in format_figures(fig):
        print("  " + line, file=out)
    if cfg.resume_adapter_file:
        print(f"note: {RESUME_NOTE}", file=out)
    warning = small_model_warning(fig)
    for line in warning:
        print(line, file=out)
    return warning


def run(args: argparse.Namespace) -> int:
    if args.stop:
        return stop_command(args.stop)
    cfg = config_from_args(args)
    cfg.adapter_path = str(Path(cfg.adapter_path).expanduser().resolve())
    fig = preflight(cfg)
    warning = print_plan(cfg, fig)
    if warning:
        confirm("train anyway?", args.yes, "small-model warning above: pass --yes to train anyway")

    folder = Path(cfg.adapter_path)

    ensure_free(folder / "events.jsonl", f"training run {folder}")  # a live run: one line, exit 2
    if previous_run(folder):
        confirm(
            f"{folder} holds an earlier run; archive its events and start again?",
            args.yes,
            f"{folder} holds an earlier run (events.jsonl): pass --yes to archive it and start again",
        )
        archive_previous_run(folder)
    return train_and_follow(cfg)


def stop_command(run_folder: str, wait_seconds: float = 120.0) -> int:
    """`lemlab train --stop RUN`: signal the run's trainer, then wait for its final event."""
    folder = Path(run_folder).expanduser().resolve()
    pid = stop_run(folder)
    print(
        f"asked the trainer (pid {pid}) to stop: it saves adapters.safetensors first",
        file=sys.stderr,
    )
    watcher = RunWatcher(
        RunSource(folder / EVENTS_FILE, folder), liveness=trainer_check(3.0), follow_name=False
    )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        watcher.poll()
        watcher.check_trainer()
        st = watcher.state
        if st.finished:
            if st.status == "stopped":
                print(
                    f"stopped at iteration {st.iteration}: adapters.safetensors saved, "
                    f"{len(st.checkpoints)} checkpoints kept in {folder}",
                    file=sys.stderr,
                )
                return 0
            print(
                visible_line(
                    f"the run ended: {st.status}" + (f": {st.message}" if st.message else "")
                ),
                file=sys.stderr,
            )
            return 0 if st.status == "done" else 1
        time.sleep(0.2)
    print(
        f"the trainer has not stopped yet (it stops before its next batch): lemlab watch {folder}",
        file=sys.stderr,
    )
    return 1


def train_and_follow(cfg: TrainingConfig, label: str = "") -> int:
    """Start the child, show progress on stderr until it ends, map its outcome to an exit code."""
    proc = start_training(cfg)
    watcher = RunWatcher(proc.source, clock=time.time, follow_name=False)  # its child's file
    interrupts = {"n": 0}

    def on_signal(signum: int, frame: Any) -> None:
        interrupts["n"] += 1
        if interrupts["n"] == 1:
            print(
                "\nstopping: the trainer saves adapters.safetensors first (Ctrl+C again to kill)",
                file=sys.stderr,
            )
            proc.request_stop()
        else:
            proc.kill()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _follow(proc, watcher, label)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return _outcome(proc.wait(), watcher, proc.log_path, EXIT_STOPPED)


def _follow(proc: Any, watcher: Any, label: str) -> None:
    from rich.console import Console

    console = Console(file=sys.stderr, highlight=False)
    if console.is_terminal:
        _follow_live(proc, watcher, console, label)
        return
    while True:
        done = proc.poll() is not None
        for ev in watcher.poll():
            print(visible_line(label + event_line(ev)), file=sys.stderr, flush=True)  # file text
        if done:
            return
        time.sleep(0.2)


def _follow_live(proc: Any, watcher: Any, console: Any, label: str) -> None:
    from rich.live import Live
    from rich.text import Text

    def view() -> Text:
        head = [label.strip()] if label else []
        lines = summary_lines(watcher.state, width=min(console.width, 100), now=time.time())
        return Text(visible("\n".join(head + lines)))  # from events.jsonl: controls visible

    drawn = 0.0
    with Live(view(), console=console, auto_refresh=False, transient=False) as live:
        while True:
            done = proc.poll() is not None
            # Redrawn on events, and each second between them ("no event for 40s" ticks).
            if watcher.poll() or done or time.monotonic() - drawn >= 1.0:
                live.update(view(), refresh=True)
                drawn = time.monotonic()
            if done:
                return
            time.sleep(0.25)


def _outcome(code: int, watcher: Any, log: Path, stopped_code: int) -> int:
    state = watcher.state
    if state.status == "done":
        print(
            f"done: {len(state.checkpoints)} checkpoints, adapters in {watcher.source.folder}",
            file=sys.stderr,
        )
        return 0
    if state.status == "stopped":
        print(
            f"stopped at iteration {state.iteration}: adapters.safetensors saved, "
            f"{len(state.checkpoints)} checkpoints kept in {watcher.source.folder}",
            file=sys.stderr,
        )
        return stopped_code
    if state.status == "error":
        raise TrainingFailed(f"training failed: {state.message} (log: {log})")

    raise TrainingFailed(f"{record_lost_trainer(watcher.source.folder, code)} (log: {log})")
