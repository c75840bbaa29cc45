"""`lemlab sessions [--json]`: saved sessions (name, updated, model, messages, runs) and the
files that could not be read (reported, left untouched). Exit 1 when any file is damaged."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lemlab.core.config import load_config
from lemlab.core.safe_text import visible_line
from lemlab.core.sessions import list_sessions


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--dir", help="sessions folder (default: config's sessions_dir or the data folder)"
    )


def sessions_dir(arg: str | None) -> Path:
    if arg:
        from lemlab.commands.arg_checks import given_folder

        return given_folder(arg, "--dir")
    return load_config().resolved_sessions_dir


def run(args: argparse.Namespace) -> int:
    folder = sessions_dir(args.dir)
    found, damaged = list_sessions(folder)
    if args.json:
        print(
            json.dumps(
                {"dir": str(folder), "sessions": [s.as_dict() for s in found], "damaged": damaged},
                indent=2,
            )
        )
    elif not found and not damaged:
        print(f"no sessions in {folder} (start one with `lemlab --session NAME`)")
    else:
        rows = [("NAME", "UPDATED", "MODEL", "MSGS", "RUNS")] + [
            (
                s.name,
                s.updated[:19].replace("T", " "),
                Path(s.model).name or "-",
                str(s.messages),
                str(s.runs),
            )
            for s in found
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            # Names come from file names and session files: controls shown visibly.
            print(
                visible_line(
                    "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                )
            )
        for line in damaged:
            print(visible_line(f"damaged (left untouched): {line}"))
    return 1 if damaged else 0
