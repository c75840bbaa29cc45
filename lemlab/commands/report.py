"""`lemlab report RUN[:COND] [--vs OTHER[:COND]] [--ref NAME]`: summarise an A/B run, compare
any two of its conditions, or a condition of one run with a condition of another, probe by
probe; `lemlab report --training A B` puts two adapters' training side by side."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lemlab.core.ab.abfile import read_ab_run
from lemlab.core.ab.report import RENDERERS, run_report, split_run_spec, vs_report
from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.files.overwrite import check_outputs
from lemlab.core.html import report as rh
from lemlab.core.html.sides import generated_now, override_notes, report_and_sides
from lemlab.core.models import adapter_compare
from lemlab.core.paths import get_paths
from lemlab.core.safe_text import visible, visible_json, visible_line
from lemlab.core.sessions import load_session_file


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run",
        metavar="RUN[:COND]",
        nargs="?",
        help="A/B run JSONL file; RUN:COND picks its condition compared",
    )
    p.add_argument(
        "--vs",
        default=None,
        metavar="OTHER[:COND]",
        help="compare RUN (new) against OTHER (old), probe by probe; OTHER:COND "
        "compares against that condition of OTHER",
    )
    p.add_argument(
        "--format",
        choices=("md", "csv", "json", "html"),
        default="md",
        help="html: one self-contained page with charts (needs --out); RUN may then "
        "also be an adapter folder, for its training curves",
    )
    p.add_argument("--out", default=None, metavar="FILE", help="write the report here (html)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--session",
        default=None,
        metavar="NAME",
        help="html: show this session's score overrides for the run",
    )
    p.add_argument(
        "--cond",
        "--condition",
        dest="condition",
        default=None,
        metavar="NAME",
        help="the condition compared (default: every one; with --vs: baseline)",
    )
    p.add_argument(
        "--ref",
        default=None,
        metavar="NAME",
        help="the reference condition (default baseline; with --vs: OTHER's "
        "condition, default the same name)",
    )
    p.add_argument(
        "--training",
        nargs="+",
        default=None,
        metavar="ADAPTER",
        help="one adapter's training configuration and effective gradient, or two "
        "side by side (no RUN)",
    )


def run(args: argparse.Namespace) -> int:
    if args.format == "html":
        return _html(args)
    if args.out is not None:
        raise LemlabError(
            "--out is for --format html (md, csv and json go to stdout: redirect them)"
        )
    if args.training is not None:
        if args.run is not None or args.vs is not None:
            raise LemlabError("--training compares two adapters: give no RUN and no --vs")

        if len(args.training) > 2:
            raise LemlabError("--training takes one adapter, or two to put side by side")
        comparison = adapter_compare.compare_adapters(*args.training)
        text = adapter_compare.RENDERERS[args.format](comparison)
        sys.stdout.write(for_terminal(text, args.format, sys.stdout))
        return 0
    if args.run is None:
        raise LemlabError("give an A/B run file (or --training ADAPTER_A ADAPTER_B)")
    path, cond = split_run_spec(args.run)
    cond = _one(cond, args.condition, "RUN:COND", "--cond")
    new = read_ab_run(path)  # empty, garbage or not an A/B file: one line, exit 2
    if args.vs is not None:
        old_path, ref = split_run_spec(args.vs)
        ref = _one(ref, args.ref, "OTHER:COND", "--ref")
        report = vs_report(read_ab_run(old_path), new, cond, ref)
    else:
        report = run_report(new, cond, args.ref)
    for issue in report.issues:
        print(visible_line(issue), file=sys.stderr)
    sys.stdout.write(for_terminal(RENDERERS[args.format](report), args.format, sys.stdout))
    return 0


def _one(a: str | None, b: str | None, a_name: str, b_name: str) -> str | None:
    if a is not None and b is not None and a != b:
        raise LemlabError(f"{a_name} says {a!r} but {b_name} says {b!r}: give one")
    return a if a is not None else b


def for_terminal(rendered: str, fmt: str, out: Any) -> str:
    """A file or pipe gets the exact data; a terminal gets it with controls shown (ids and
    responses come from the A/B file): md/csv with visible symbols, JSON with JSON escapes
    so that it stays valid JSON holding the same strings."""
    if not out.isatty():
        return rendered
    return visible_json(rendered) if fmt == "json" else visible(rendered)


def _html(args: argparse.Namespace) -> int:
    """--format html: an A/B run (or two compared), or adapter folders' training runs."""
    from pathlib import Path

    if args.out is None:
        raise LemlabError("--format html needs --out FILE (a page is not for the terminal)")
    if args.training is not None or args.run is None:
        raise LemlabError(
            "--format html takes RUN (an A/B file or an adapter folder), not --training"
        )
    out = Path(args.out).expanduser()
    path, cond = split_run_spec(args.run)
    inputs = [Path(path), Path(split_run_spec(args.vs)[0]) if args.vs else None]
    check_outputs([out], inputs, force=args.force, flag="--out")

    generated = generated_now()
    if Path(path).is_dir():
        folders = [Path(path)] + ([Path(args.vs)] if args.vs else [])
        if not all(f.is_dir() for f in folders):
            raise LemlabError(
                "a training report compares adapter folders: give folders for RUN and --vs"
            )
        page = rh.training_report_html([rh.training_series(f) for f in folders], generated)
    else:
        page = _ab_html(args, path, _one(cond, args.condition, "RUN:COND", "--cond"), generated)
    write_text_atomic(out, page)
    print(f"wrote {out}")
    return 0


def _ab_html(args: argparse.Namespace, path: str, cond: str | None, generated: str) -> str:
    new, old, ref = read_ab_run(path), None, args.ref
    if args.vs is not None:
        old_path, vs_ref = split_run_spec(args.vs)
        ref = _one(vs_ref, args.ref, "OTHER:COND", "--ref")
        old = read_ab_run(old_path)
    report, sides = report_and_sides(new, old, cond, ref)
    notes = _overrides(args.session, path)
    return rh.ab_report_html(report, rh.HtmlContext(sides, notes, generated, overrides_run=path))


def _overrides(session_name: str | None, run_path: str) -> dict[tuple[str, str], Any]:
    if not session_name:
        return {}

    session = load_session_file(get_paths().sessions_dir / f"{session_name}.toml")
    return override_notes(session, run_path)
