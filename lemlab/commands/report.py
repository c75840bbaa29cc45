"""`lemlab report RUN [--vs OTHER]`: summarise an A/B run, or compare two runs probe by probe."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lemlab.core.safe_text import visible, visible_json, visible_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="A/B run JSONL file")
    p.add_argument("--vs", default=None, metavar="OTHER_RUN",
                   help="compare RUN (new) against OTHER_RUN (old), probe by probe")  # fmt: skip
    p.add_argument("--format", choices=("md", "csv", "json"), default="md")
    p.add_argument("--condition", default=None, metavar="NAME",
                   help="only this condition (with --vs: the condition compared; default baseline)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from lemlab.core.abfile import read_ab_run
    from lemlab.core.report import RENDERERS, run_report, vs_report

    new = read_ab_run(args.run)  # empty, garbage or not an A/B file: one line, exit 2
    if args.vs is not None:
        report = vs_report(read_ab_run(args.vs), new, args.condition)
    else:
        report = run_report(new, args.condition)
    for issue in report.issues:
        print(visible_line(issue), file=sys.stderr)
    sys.stdout.write(for_terminal(RENDERERS[args.format](report), args.format, sys.stdout))
    return 0


def for_terminal(rendered: str, fmt: str, out: Any) -> str:
    """A file or pipe gets the exact data; a terminal gets it with controls shown (ids and
    responses come from the A/B file): md/csv with visible symbols, JSON with JSON escapes
    so that it stays valid JSON holding the same strings."""
    if not out.isatty():
        return rendered
    return visible_json(rendered) if fmt == "json" else visible(rendered)
