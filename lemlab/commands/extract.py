"""`lemlab extract`: self-distill output -> mlx-lm chat training JSONL (`{"messages": [...]}`).

Malformed lines are reported as file:line and skipped. Output is sorted by probe id; with
--split the output is a folder holding train.jsonl and valid.jsonl (seeded shuffle; at least one
validation example when there are two or more). Existing output files are refused unless
--force (then replaced atomically); an output that is the input is refused even then.

Exit status: 0 done; 1 some lines were malformed (the good ones are still written) or nothing
passed the threshold (no example: no file is written, since training on it would fail);
2 bad arguments or an unreadable input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lemlab.core.distill import extract as x
from lemlab.core.errors import LemlabError
from lemlab.core.files.overwrite import check_outputs
from lemlab.core.safe_text import visible_line

EXIT_PROBLEMS = 1
MAX_REPORTED = 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "exit status: 0 done, 1 malformed lines skipped or no example to write, 2 bad arguments"
    )
    p.add_argument(
        "--input", required=True, metavar="I", help="self-distill JSONL (lemlab distill output)"
    )
    p.add_argument(
        "--output",
        required=True,
        metavar="O",
        help="training JSONL to write (a folder with --split)",
    )
    p.add_argument(
        "--dedup",
        choices=x.DEDUP_MODES,
        default="best",
        help="best: top score per probe (default); first: first kept; all: every kept sample",
    )
    p.add_argument(
        "--split",
        type=float,
        nargs="?",
        const=x.DEFAULT_SPLIT,
        default=None,
        metavar="FRACTION",
        help="write O/train.jsonl and O/valid.jsonl, FRACTION for training (default 0.9)",
    )
    p.add_argument(
        "--seed", type=int, default=x.DEFAULT_SPLIT_SEED, help="split shuffle seed (default 42)"
    )
    p.add_argument(
        "--stats", action="store_true", help="print generated/kept/keep rate/score/category figures"
    )
    p.add_argument("--force", action="store_true", help="replace existing output files")


@dataclass
class ExtractResult:
    stats: x.ExtractStats
    errors: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)  # empty when there was nothing to write

    @property
    def exit_code(self) -> int:
        return EXIT_PROBLEMS if self.errors or not self.written else 0


def extract_file(
    input_path: str | Path,
    output: str | Path,
    dedup: str = "best",
    split: float | None = None,
    seed: int = x.DEFAULT_SPLIT_SEED,
    force: bool = False,
) -> ExtractResult:
    """Read, dedup, sort, (split) and write; nothing is written when no example remains.
    Existing outputs are replaced only with `force`; an output that is the input never."""
    if split is not None and not 0 < split < 1:
        raise LemlabError(f"--split must be between 0 and 1 (the train fraction), got {split}")
    out = Path(output)
    if split is None and out.is_dir():
        raise LemlabError(f"{out} is a folder: give a .jsonl file (or use --split for a folder)")
    if split is not None and out.exists() and not out.is_dir():
        raise LemlabError(f"{out} is a file: with --split the output is a folder")
    targets = [out / "train.jsonl", out / "valid.jsonl"] if split is not None else [out]
    check_outputs(targets, [Path(input_path)], force=force)
    df = x.read_distill(input_path)
    examples = x.dedup(df.samples, dedup)
    stats = x.compute_stats(df, examples)
    result = ExtractResult(stats, list(df.errors))
    if not examples:
        return result
    if split is None:
        result.written = [x.write_examples(output, examples)]
        return result
    train, valid = x.split_examples(examples, split, seed)
    result.written = list(x.write_split(output, train, valid))
    result.stats = x.ExtractStats(**{**stats.__dict__, "train": len(train), "valid": len(valid)})
    return result


def run(args: argparse.Namespace) -> int:
    result = extract_file(
        args.input, args.output, args.dedup, args.split, args.seed, force=args.force
    )
    for err in result.errors[:MAX_REPORTED]:
        print(visible_line(f"lemlab: skipped {err}"), file=sys.stderr)  # quotes the file
    if len(result.errors) > MAX_REPORTED:
        print(
            f"lemlab: ... and {len(result.errors) - MAX_REPORTED} more malformed lines",
            file=sys.stderr,
        )
    if args.stats:
        print("\n".join(result.stats.lines()))
    s = result.stats
    if not result.written:
        print(
            f"lemlab: WARNING: {args.input} holds no kept sample (nothing passed the threshold): "
            "no training file written",
            file=sys.stderr,
        )
    else:
        where = ", ".join(str(p) for p in result.written)
        print(f"wrote {s.examples} examples from {s.probes} probes ({args.dedup}) to {where}")
        if s.valid == 0:
            print(
                "lemlab: warning: one example cannot be split: valid.jsonl is empty "
                "(mlx-lm needs validation data to train)",
                file=sys.stderr,
            )
    if result.errors:
        print(f"lemlab: {len(result.errors)} malformed lines skipped", file=sys.stderr)
    return result.exit_code
