"""`lemlab probes [--json]`: the probe batteries and kernels lemlab can find."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lemlab.core.battery.kernels import list_kernels
from lemlab.core.battery.probes import list_batteries
from lemlab.core.safe_text import visible_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--dir", action="append", default=[], metavar="DIR", help="extra folder of batteries"
    )


def run(args: argparse.Namespace) -> int:
    from lemlab.commands.arg_checks import given_folder

    for folder in args.dir:
        given_folder(folder, "--dir")
    batteries = [
        {
            "name": b.name,
            "probes": b.count,
            "categories": list(b.categories),
            "path": str(b.path),
            "description": b.description,
            **({"error": b.error} if b.error else {}),
        }
        for b in list_batteries(args.dir)
    ]
    kernels = [
        {
            "name": k.name,
            "sha256": k.sha256,
            "size": k.size,
            "path": str(k.path),
            **({"error": k.error} if k.error else {}),
        }
        for k in list_kernels()
    ]
    if args.json:
        print(json.dumps({"batteries": batteries, "kernels": kernels}, indent=2))
    else:
        _print_tables(batteries, kernels)
    return 0


def _print_tables(batteries: list[dict[str, Any]], kernels: list[dict[str, Any]]) -> None:
    print("Batteries")
    if not batteries:
        print("  (none found)")
    for b in batteries:
        if "error" in b:
            print(visible_line(f"  {b['name']:<20} unreadable: {b['error']}"))  # quotes the file
            continue
        cats = ", ".join(b["categories"])
        print(visible_line(f"  {b['name']:<20} {b['probes']:>4} probes  {b['path']}"))
        print(visible_line(f"  {'':<20} {len(b['categories']):>4} categories: {cats}"))
    print()
    print("Kernels")
    if not kernels:
        print("  (none found)")
    for k in kernels:
        if "error" in k:
            print(visible_line(f"  {k['name']:<20} unreadable: {k['error']}"))
            continue
        print(
            visible_line(
                f"  {k['name']:<20} sha256 {k['sha256'][:12]}  {k['size']:>6} bytes  {k['path']}"
            )
        )
