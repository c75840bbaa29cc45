"""Command-line numbers checked while parsing, before any file is read or model loaded: every
float flag must be finite (`x < 0` is false for NaN, so later range checks let it through), every
number has a range, and flags that mean the same thing in several commands share one range.

argparse errors become one line (`lemlab: error: ...`, exit status 2) instead of usage + error.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from lemlab.core.errors import LemlabError

# dest -> (low, high, low excluded). Applied to the flag of that name in every command.
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "seed": (0, 2**32 - 1, False),  # what numpy, MLX and servers all accept
    "split_seed": (0, 2**32 - 1, False),
    "max_tokens": (1, 10**9, False),  # roomy: "reply until Ctrl+C" runs pass 10**8
    "temp": (0, 100, False),
    "temperature": (0, 100, False),
    "top_p": (0, 1, True),
    "retry_delay": (0, 3600, False),
    "retries": (1, 1000, False),
    "max_in_flight": (1, 1024, False),
    "interval": (0, 3600, True),
    "samples": (1, 100_000, False),
    "limit": (1, 10**9, False),
    "depth": (0, 64, False),
    "split": (0, 1, True),
    # make-tiny-model: a hidden size of 2**20 makes MLX segfault while allocating.
    "hidden": (64, 8192, False),
    "layers": (1, 64, False),
}
INT_LIMIT = 2**53  # any other whole number: beyond this it is a typo, not a setting


class UsageError(LemlabError):
    """A command line argparse refused; main() prints it as its one line (exit status 2)."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not usage + error: UsageError."""

    def error(self, message: str) -> NoReturn:
        line = " ".join(message.split())
        line = re.sub(r"^argument (-[-\w]+)(?:/-[-\w]+)*: ", r"\1 ", line)  # "--temp must be ..."
        raise UsageError(f"{line} (see `{self.prog} --help`)")


def _flag(action: argparse.Action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def checked_number(
    kind: type, low: float | None, high: float | None, low_open: bool
) -> Callable[[str], Any]:
    """An argparse `type` for a finite number of `kind` within [low, high] (low excluded when
    `low_open`). Raises ArgumentTypeError, which argparse words as 'argument --x: ...'."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number (got {text!r})")
        lo = -INT_LIMIT if low is None else low
        hi = INT_LIMIT if high is None else high
        if not (lo < value if low_open else lo <= value) or not value <= hi:
            shown = text if len(text) <= 24 else text[:23] + "…"
            if hi <= 1:  # a fraction
                rule = f"between {_n(lo)} and {_n(hi)}" + (f", above {_n(lo)}" if low_open else "")
            elif value > hi:
                rule = f"at most {_n(hi)}"
            else:
                rule = f"above {_n(lo)}" if low_open else f"at least {_n(lo)}"
            raise argparse.ArgumentTypeError(f"must be {rule} (got {shown})")
        return value

    parse.__name__ = kind.__name__  # argparse's fallback wording names the type
    return parse


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def harden(parser: argparse.ArgumentParser) -> None:
    """Replace int/float `type`s of the parser's arguments with checked ones (see BOUNDS)."""
    for action in parser._actions:
        kind = action.type
        if kind not in (int, float):
            continue
        low, high, low_open = BOUNDS.get(action.dest, (None, None, False))
        action.type = checked_number(kind, low, high, low_open)


def given_folder(path: str, flag: str) -> Path:
    """A folder the user named on the command line: missing or a file is a LemlabError (an
    empty listing would hide the typo)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise LemlabError(f"{flag} {path}: no such folder")
    if not p.is_dir():
        raise LemlabError(f"{flag} {path}: is a file, not a folder")
    return p
