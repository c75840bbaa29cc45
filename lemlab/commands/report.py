"""`lemlab report RUN [--vs OTHER]`: summarise an A/B run, or compare two runs probe by probe."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="A/B run JSONL file")
    p.add_argument("--vs", default=None, metavar="OTHER_RUN",
                   help="compare RUN (new) against OTHER_RUN (old), probe by probe")  # fmt: skip
    p.add_argument("--format", choices=("md", "csv", "json"), default="md")
    p.add_argument("--condition", default=None, metavar="NAME",
                   help="only this condition (with --vs: the condition compared; default baseline)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from lemlab.core.abfile import read_ab
    from lemlab.core.report import RENDERERS, run_report, vs_report

    new = read_ab(args.run)
    if args.vs is not None:
        report = vs_report(read_ab(args.vs), new, args.condition)
    else:
        report = run_report(new, args.condition)
    for issue in report.issues:
        print(issue, file=sys.stderr)
    sys.stdout.write(RENDERERS[args.format](report))
    return 0
