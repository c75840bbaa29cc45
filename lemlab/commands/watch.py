"""`lemlab watch PATH`: follow a training run in a plain terminal (works over bare SSH).

PATH is an events.jsonl, an adapter folder (its events.jsonl, else its train.log) or a saved
mlx-lm stdout log in either format (old `Iter N: ...` lines or the 0.32 table); the format is
detected from the first line. Live mode redraws a summary and loss chart, follows the file as
it grows (restarting if it is truncated or replaced), and ends at a done / error / stopped
event (or, for logs, the final report) or on Ctrl+C. `--once` prints the summary and exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from lemlab.core.errors import LemlabError
from lemlab.core.training_events import RunSource, RunWatcher, resolve_run_source
from lemlab.core.training_summary import event_line, summary_lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="events.jsonl, adapter folder, or mlx-lm stdout log")
    p.add_argument("--once", action="store_true", help="print the summary once and exit 0 (cron)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")


def source_for(path: str) -> RunSource:
    try:
        return resolve_run_source(path)
    except FileNotFoundError as exc:
        raise LemlabError(str(exc)) from None


def summary_text(path: str, *, chart: bool = True, width: int = 72) -> str:
    """The `--once` output for PATH (a function, so the bench can time it in-process)."""
    watcher = RunWatcher(source_for(path))
    watcher.poll()
    return "\n".join([f"run {watcher.source.file}"] + summary_lines(watcher.state, chart=chart, width=width))


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise LemlabError("--interval must be positive")
    width = min(shutil.get_terminal_size((80, 24)).columns, 100)
    if args.once:
        print(summary_text(args.path, width=width))
        return 0
    watcher = RunWatcher(source_for(args.path), clock=time.time)
    tty = sys.stdout.isatty()
    try:
        _live(watcher, args.interval, width) if tty else _plain(watcher, args.interval)
    except KeyboardInterrupt:
        pass  # leaving the watch is not an error; the run itself carries on
    if not tty:
        print("\n".join(summary_lines(watcher.state, chart=False)))
    return 0


def _finished(watcher: RunWatcher) -> bool:
    return watcher.state.finished


def _live(watcher: RunWatcher, interval: float, width: int) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(highlight=False)

    def view() -> Text:
        head = f"watching {watcher.source.file}   (Ctrl+C to leave; the run continues)"
        return Text("\n".join([head] + summary_lines(watcher.state, width=width)))

    watcher.poll()
    with Live(view(), console=console, auto_refresh=False) as live:
        while not _finished(watcher):
            time.sleep(interval)
            if watcher.poll():
                live.update(view(), refresh=True)


def _plain(watcher: RunWatcher, interval: float) -> None:
    while True:
        for ev in watcher.poll():
            print(event_line(ev), flush=True)
        if _finished(watcher):
            return
        time.sleep(interval)
