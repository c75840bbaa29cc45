"""`lemlab rephrase --input I --output O [--seed N]`: add perspective / urgency / cultural
variants to a battery (originals first, then three variants per probe). An existing output
is replaced only with --force; the input battery itself never."""

from __future__ import annotations

import argparse
from pathlib import Path

from lemlab.core.battery.probes import resolve_battery, write_battery
from lemlab.core.battery.rephrase import rephrase_battery
from lemlab.core.errors import LemlabError
from lemlab.core.files.overwrite import check_outputs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", "-i", required=True, help="battery file, or a shipped battery name")
    p.add_argument(
        "--output",
        "-o",
        required=True,
        help="file to write: research JSON array, or TOML / JSONL when it ends in .toml / .jsonl",
    )
    p.add_argument("--seed", type=int, default=0, help="changes which framings are picked")
    p.add_argument(
        "--dir", action="append", default=[], metavar="DIR", help="extra folder of batteries"
    )
    p.add_argument("--force", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    battery = resolve_battery(args.input, args.dir)
    out_path = Path(args.output).expanduser()
    if out_path.is_dir():
        raise LemlabError(f"{out_path}: is a folder; give a file name for --output")

    check_outputs([out_path], [battery.path], force=args.force)
    probes = rephrase_battery(battery.probes, seed=args.seed)
    description = f"{battery.name} with perspective, urgency and cultural variants"
    try:
        write_battery(out_path, probes, name=f"{battery.name}-rephrased", description=description)
    except OSError as exc:
        raise LemlabError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    n = len(battery.probes)
    print(f"wrote {len(probes)} probes ({n} originals + {len(probes) - n} variants) to {out_path}")
    return 0
