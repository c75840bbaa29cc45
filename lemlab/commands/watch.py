"""`lemlab watch PATH`: follow a training run in a plain terminal (works over bare SSH).

PATH is an events.jsonl, an adapter folder (its events.jsonl, else its train.log) or a saved
mlx-lm stdout log in either format (old `Iter N: ...` lines or the 0.32 table); the format is
detected from the first line. Live mode redraws a full-screen monitor (figures and a loss chart
sized to the terminal) every interval, follows the file as it grows (restarting if it is
truncated or replaced), and ends at a done / error / stopped event (or, for logs, the final
report) or on Ctrl+C. `--once` prints the summary and exits. Output that is not a terminal, or
a terminal with TERM=dumb, gets one line per event and a closing summary. A PATH that does not
exist yet is waited for (start the watch before the run). A run whose trainer died without a
final event (SIGKILL, a crash; told from the pid and host in its start event) counts as failed.

Exit status, the same in every mode: 0 the run is done (or still running: `--once`, or the
watch left with Ctrl+C), 1 the run ended in error or its trainer died, 2 bad input (`--once`
on a PATH that does not exist), 3 the run was stopped before its end (adapters saved).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.safe_text import visible, visible_line
from lemlab.core.training.events import (
    CONFIG_FILE,
    EVENTS_FILE,
    RunSource,
    RunState,
    RunWatcher,
    resolve_run_source,
)
from lemlab.core.training.summary import event_line, monitor_lines
from lemlab.engine.train_runner import trainer_check

MAX_WIDTH = 160  # wider charts add no information
GRACE_SECONDS = 3.0  # a trainer gone this long without a final event: the run was interrupted


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "Exit status (live, plain and --once alike): 0 the run is done (or still running), 1 it\n"
        "ended in error or its trainer died, 2 bad input, 3 it was stopped before its end.\n"
        "A PATH that does not exist yet is waited for; TERM=dumb prints one line per event."
    )
    p.add_argument("path", help="events.jsonl, adapter folder, or mlx-lm stdout log")
    p.add_argument("--once", action="store_true", help="print the summary once and exit (cron)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    p.add_argument(
        "--vs", metavar="OTHER", help="draw another run (a previous one) on the same chart"
    )


def source_for(path: str) -> RunSource:
    folder = Path(path).expanduser()
    # `lemlab train` writes its config and train.log before the child writes its first event:
    # a watch started in that moment must wait for events.jsonl, not settle for the log.
    if folder.is_dir() and (folder / CONFIG_FILE).is_file() and not (folder / EVENTS_FILE).exists():
        return RunSource(folder / EVENTS_FILE, folder)
    try:
        return resolve_run_source(path)
    except FileNotFoundError as exc:
        raise LemlabError(str(exc)) from None


def wait_for_source(path: str, interval: float, settle_seconds: float = 10.0) -> RunSource:
    """The run's source; a PATH that does not exist yet is waited for (one stderr line), so a
    watch can be started before `lemlab train` or the TUI makes the folder. Once it appears it
    gets `settle_seconds` to hold something to read. An existing folder with nothing in it is
    bad input, as before (LemlabError)."""
    p = Path(path).expanduser()
    if p.exists():
        return source_for(path)
    print(f"waiting for {p} to appear (Ctrl+C leaves)", file=sys.stderr, flush=True)
    while not p.exists():
        time.sleep(interval)
    deadline = time.monotonic() + settle_seconds
    while True:
        try:
            return source_for(path)
        except LemlabError:
            if time.monotonic() > deadline:
                raise
        time.sleep(min(interval, 0.2))


def summary_text(path: str, *, chart: bool = True, width: int = 72) -> str:
    """The `--once` output for PATH (a function, so the bench can time it in-process)."""
    return _summary(_read_once(path), chart=chart, width=width)


def _read_once(path: str) -> RunWatcher:
    watcher = RunWatcher(source_for(path), liveness=trainer_check(0.0))  # one look: no grace period
    watcher.poll()
    watcher.check_trainer()
    return watcher


def _other(path: str | None) -> tuple[RunState, str] | None:
    """The run `--vs` names, read once, with the name its chart legend shows."""
    if not path:
        return None
    watcher = RunWatcher(source_for(path))
    watcher.poll()
    return watcher.state, watcher.source.folder.name


def _summary(
    watcher: RunWatcher,
    *,
    chart: bool = True,
    width: int = 72,
    other: tuple[RunState, str] | None = None,
) -> str:
    lines = monitor_lines(watcher.state, chart=chart, width=width, now=time.time(), other=other)
    return "\n".join([f"run {watcher.source.file}"] + lines)


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise LemlabError("--interval must be positive")
    other = _other(getattr(args, "vs", None))
    if args.once:
        once = _read_once(args.path)
        width = min(shutil.get_terminal_size((80, 24)).columns, 100)
        print(visible(_summary(once, width=width, other=other)))
        return _interrupted(once)
    # A dumb terminal cannot redraw in place (rich's Live would print nothing until the end).
    tty = sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"
    watcher = None
    try:
        # follow_name=False: a rotated events.jsonl is followed to the run's end (file_follower).
        watcher = RunWatcher(
            wait_for_source(args.path, args.interval),
            clock=time.time,
            liveness=trainer_check(GRACE_SECONDS),
            follow_name=False,
        )
        _live(watcher, args.interval, other) if tty else _plain(watcher, args.interval)
    except KeyboardInterrupt:
        pass  # leaving the watch is not an error; the run itself carries on
    if watcher is None:
        return 0
    if not tty:
        print(visible("\n".join(monitor_lines(watcher.state, chart=False, now=time.time()))))
    return _interrupted(watcher)


EXIT_DONE, EXIT_FAILED, EXIT_STOPPED = 0, 1, 3


def _interrupted(watcher: RunWatcher) -> int:
    """The exit status for how the run ended, with one line on stderr unless it is done or
    still running."""
    st = watcher.state
    where = watcher.source.folder
    if st.status == "interrupted":
        print(
            visible_line(f"run interrupted: {st.message}; checkpoints so far are kept in {where}"),
            file=sys.stderr,
        )
        return EXIT_FAILED
    if st.status == "error":
        print(
            visible_line(
                f"run failed: {st.message or 'error event'}; checkpoints so far are kept in {where}"
            ),
            file=sys.stderr,
        )
        return EXIT_FAILED
    if st.status == "stopped":
        print(
            f"run stopped at iteration {st.iteration:,} before its end; adapters saved in {where}",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    return EXIT_DONE


def screen_lines(
    watcher: RunWatcher, width: int, height: int, other: tuple[RunState, str] | None = None
) -> list[str]:
    """One redraw of the live monitor for a terminal of width x height."""
    state = watcher.state
    if state.finished:
        verb, note = "run", f"   (ended: {state.status})"
    else:
        verb, note = "watching", "   (Ctrl+C leaves the watch; the run carries on)"
    head = f"{verb} {_fit_left(str(watcher.source.file), width - len(verb) - 1 - len(note))}{note}"
    # One row spare: a screen filled to the last row scrolls when the cursor moves below it.
    body = monitor_lines(
        state, width=min(width, MAX_WIDTH), height=height - 2, now=time.time(), other=other
    )
    return [head] + body


def _fit_left(text: str, room: int) -> str:
    """Keep the end of a long path (the run's folder and file), so the hint after it shows."""
    room = max(room, 12)
    return text if len(text) <= room else "…" + text[-(room - 1) :]


def _live(watcher: RunWatcher, interval: float, other: tuple[RunState, str] | None = None) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(highlight=False)

    def view() -> Text:
        width, height = console.size  # read per redraw: follows a resized terminal
        # events.jsonl and mlx-lm logs are files: their text is shown with controls visible.
        return Text(
            visible("\n".join(screen_lines(watcher, width, height, other))),
            no_wrap=True,
            overflow="crop",
        )

    watcher.poll()
    with Live(view(), console=console, auto_refresh=False) as live:
        while not watcher.state.finished:
            time.sleep(interval)
            watcher.poll()
            watcher.check_trainer()
            live.update(view(), refresh=True)  # every interval: the clock and ETA tick too


def _plain(watcher: RunWatcher, interval: float) -> None:
    while True:
        for ev in watcher.poll():
            print(visible_line(event_line(ev)), flush=True)
        if watcher.check_trainer():
            print(visible_line(f"interrupted: {watcher.state.message}"), flush=True)
        if watcher.state.finished:
            return
        time.sleep(interval)
