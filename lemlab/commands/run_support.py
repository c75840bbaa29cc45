"""What the commands that run a battery through a model share (`ab`, `distill`, `chat`): the
model / server arguments and their checks, the sampler flags, the local engine, servers' slots,
Ctrl+C handling and the progress display on stderr. Heavy imports stay inside the functions."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lemlab.core.engine_api import Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.remote.dispatch import RetryPolicy
from lemlab.core.remote.endpoints import NAMED_PREFIX
from lemlab.core.remote.parallel_runs import check_model_specs
from lemlab.core.safe_text import visible, visible_line

# --- models and servers ----------------------------------------------------------------------


def add_model_arguments(p: argparse.ArgumentParser, *, spread: str, unit: str) -> None:
    """--model, --endpoint, --max-in-flight, --retries, --retry-delay. `spread`: what several
    servers share ("the probes over several servers"); `unit`: what a retry redoes ("probe")."""
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="model folder, cached Hugging Face id, or server openai:URL#MODEL; "
        f"repeat a server spec (same model) to spread {spread}",
    )
    p.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="NAME",
        help="a server from config.toml's [endpoints.NAME]; repeat for several",
    )
    p.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        metavar="N",
        help="requests per server at once (default: the endpoint's, else 1)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=5,
        metavar="N",
        help=f"tries per {unit} on server errors before the run stops (default 5)",
    )
    p.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds before the first retry, doubling each time (default 1)",
    )


def given_specs(args: argparse.Namespace) -> list[str]:
    """--model values (one string, or the list argparse collects) then `endpoint:NAME` for each
    --endpoint, unchecked."""
    model = getattr(args, "model", None)
    specs = [model] if isinstance(model, str) else list(model or [])
    return specs + [NAMED_PREFIX + n for n in getattr(args, "endpoint", None) or []]


def model_specs(args: argparse.Namespace) -> list[str]:
    """given_specs, checked: several are allowed only as servers of one model."""
    return check_model_specs(given_specs(args))


def check_dispatch_args(args: argparse.Namespace) -> None:
    """--max-in-flight, --retries, --retry-delay (absent attributes: the defaults)."""
    cap = getattr(args, "max_in_flight", None)
    if cap is not None and cap < 1:
        raise LemlabError("--max-in-flight must be at least 1")
    if getattr(args, "retries", 5) < 1:
        raise LemlabError("--retries must be at least 1")
    if getattr(args, "retry_delay", 1.0) < 0:
        raise LemlabError("--retry-delay must be 0 or more")


def retry_policy(args: argparse.Namespace) -> Any:
    # Re-probes of a server that went down: twice the tries, so a restart has time to finish.
    return RetryPolicy(
        max_attempts=args.retries, base_delay=args.retry_delay, max_probes=2 * args.retries
    )


def sampler_from_args(args: argparse.Namespace) -> Any:
    """--temp, --top-p, --max-tokens, --seed as a Sampler (one-line errors for bad values)."""
    if args.max_tokens < 1:
        raise LemlabError("--max-tokens must be at least 1")
    if args.temp < 0:
        raise LemlabError("--temp must be 0 (greedy) or more")
    if not 0 < args.top_p <= 1:
        raise LemlabError("--top-p must be in (0, 1]")
    return Sampler(
        temperature=args.temp, top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed
    )


@contextmanager
def local_engine() -> Iterator[Any]:
    """The engine thread of a local run, shut down (MLX streams cleared) however the run ends."""
    from lemlab.engine.router import EngineRouter

    engine = EngineRouter()
    try:
        yield engine
    finally:
        engine.shutdown()


@contextmanager
def server_slots(
    specs: Sequence[str], variants: list[tuple[str, str | None]], max_in_flight: int | None
) -> Iterator[tuple[list[Any], list[str]]]:
    """(slots, warnings) of a run spread over servers, disconnected however the run ends."""
    from lemlab.engine.remote_pool import connect_slots, shutdown_slots

    slots, warnings = connect_slots(specs, variants, max_in_flight=max_in_flight)
    try:
        yield slots, warnings
    finally:
        shutdown_slots(slots)


def print_notes(notes: Sequence[str]) -> None:
    """What opening an output found (a resumed file, a dropped half line), on stderr."""
    for note in notes:
        print(visible_line(f"lemlab: {note}"), file=sys.stderr)  # may quote the output file


# --- while it runs ---------------------------------------------------------------------------


class SigintCancels:
    """First Ctrl+C cancels the runner (it stops at the next token, keeping every flushed line);
    a second one interrupts at once. Works with any runner that has cancel() and cancelled.
    `stops_after` ends the first notice ("the current response", "the current token")."""

    def __init__(self, runner: Any, stops_after: str = "the current token") -> None:
        self.runner = runner
        self.stops_after = stops_after
        self.previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.runner.cancelled:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a third one can never be swallowed
            raise KeyboardInterrupt
        print(
            f"\nlemlab: stopping after {self.stops_after}... (Ctrl+C again to quit now)",
            file=sys.stderr,
        )
        self.runner.cancel()

    def __enter__(self) -> SigintCancels:
        self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)


class RunProgress:
    """Progress on stderr: a transient rich bar at a terminal (`live`), else nothing but the
    plain lines print() writes. `fields` are the bar's extra columns (rich templates) and their
    starting values."""

    def __init__(self, first: str, columns: Sequence[str], fields: dict[str, str]) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self._first, self._columns, self._fields = first, list(columns), fields
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> Any:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                *(TextColumn(c) for c in self._columns),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                visible_line(self._first), total=None, **self._fields
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, **kw: Any) -> None:
        if "description" in kw:  # holds probe ids and condition names: never raw controls
            kw["description"] = visible_line(kw["description"])
        if self.progress is not None:
            self.progress.update(self.task, **kw)

    def print(self, text: str) -> None:
        if not self.live:  # one unwrapped line per event: logs and grep see whole lines
            sys.stderr.write(visible(text) + "\n")
            sys.stderr.flush()
            return
        self.console.print(visible(text), markup=False, highlight=False)
