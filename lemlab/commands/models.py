"""`lemlab models [--json] [--path DIR]...`: the MLX models and LoRA adapters lemlab can find.

Scans the Hugging Face cache, the config's model_dirs and adapter_dirs, lemlab's runs folder and
every --path. Broken folders are listed with the reason; they never make the command fail.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lemlab.core.config import load_config
from lemlab.core.errors import LemlabError
from lemlab.core.models.discovery import discover, lab_folders
from lemlab.core.safe_text import visible_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="also scan this folder (repeatable), besides the config's model_dirs and the HF cache",
    )
    p.add_argument("--no-hf-cache", action="store_true", help="do not scan the Hugging Face cache")
    p.add_argument("--depth", type=int, default=4, help="how many folder levels to descend (4)")


def run(args: argparse.Namespace) -> int:
    extra = [Path(p).expanduser() for p in args.path]
    for p in extra:
        if not p.is_dir():
            raise LemlabError(f"--path {p}: {'not a folder' if p.exists() else 'no such folder'}")
    if args.depth < 0:
        raise LemlabError("--depth must be 0 or more")
    cfg = load_config()
    # lab_folders adds the runs folder (trained adapters), the demo models and recent folders:
    # the Models pane scans the same.
    folders = lab_folders([*extra, *cfg.paths_of("model_dirs"), *cfg.paths_of("adapter_dirs")])
    found = discover(
        folders,
        include_hf_cache=cfg.scan_hf_cache and not args.no_hf_cache,
        max_depth=args.depth,
    )
    if args.json:
        print(json.dumps(found.to_dict(), indent=2))
    else:
        _print_tables(found.to_dict())
    return 0


def _print_tables(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 160))  # pipes: keep paths whole
    if d["models"]:
        console.print(_table("Models", MODEL_COLUMNS, [_model_row(m) for m in d["models"]]))
    else:
        console.print(
            Text("No models found. Add folders to model_dirs in config.toml, or use --path DIR.")
        )
    if d["adapters"]:
        console.print(_table("Adapters", ADAPTER_COLUMNS, [_adapter_row(a) for a in d["adapters"]]))
    for a in d["adapters"]:
        if a["base_warning"]:
            console.print(Text(visible_line(f"warning: {a['base_warning']}")))
    if d["problems"]:
        rows = [[p["kind"], p["path"], p["problem"]] for p in d["problems"]]
        console.print(_table("Not usable", ("kind", "path", "problem"), rows))


MODEL_COLUMNS = ("name", "type", "params", "quant", "layers", "size", "source", "path")
ADAPTER_COLUMNS = (
    "name",
    "base",
    "rank",
    "layers",
    "iters",
    "lr",
    "batch",
    "eff grad",
    "ckpts",
    "size",
    "path",
)
_NUMERIC = {"params", "layers", "size", "rank", "iters", "ckpts", "lr", "batch", "eff grad"}


def _table(title: str, columns: tuple[str, ...], rows: list[list[Any]]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold", justify="right" if col in _NUMERIC else "left")
    for row in rows:
        # Text, not markup: names and paths may hold square brackets.
        table.add_row(*(Text(visible_line(str(c))) for c in row))  # controls shown visibly
    return table


def _model_row(m: dict[str, Any]) -> list[Any]:
    name = m["name"] + (" (demo)" if m["is_demo"] else "")
    return [
        name,
        m["model_type"] or "?",
        params_label(m["params"]),
        m["quantization"],
        _dash(m["layers"]),
        human_bytes(m["size_bytes"]),
        m["source"],
        m["path"],
    ]


def _adapter_row(a: dict[str, Any]) -> list[Any]:
    base = a["base"]["name"] if a["base"] else f"{a['base_model'] or '?'} (not found)"
    return [
        a["name"],
        base,
        _dash(a["rank"]),
        _dash(a["num_layers"]),
        _dash(a["iters"]),
        _lr(a.get("learning_rate")),
        _dash(a.get("batch_size")),
        _dash(a.get("effective_gradient")),
        len(a["checkpoints"]),
        human_bytes(a["size_bytes"]),
        a["path"],
    ]


def _lr(v: Any) -> str:
    return "-" if v is None else f"{v:g}"  # 1e-05, 5e-06: as written in training configs


def _dash(v: Any) -> str:
    return "-" if v is None else str(v)


def params_label(n: int | None) -> str:
    from lemlab.core.models.discovery import params_label as label  # one way everywhere

    return label(n)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
