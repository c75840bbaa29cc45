"""What the step-by-step TOML plans share (training curricula and phase pipelines): a numbered
folder per step, finding a step by name or number, the required path keys and the array of
step tables. Headless: no mlx."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError


def step_dir(output: Path, i: int, name: str, fallback: str) -> Path:
    """`NN-slug` under output for step i (0-based): the name lower-cased, runs of other
    characters as one dash; `fallback` when nothing is left of it."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or fallback
    return output / f"{i + 1:02d}-{slug}"


def find_step(names: Sequence[str], key: str, path: Path, what: str) -> int:
    """A step by name or 1-based number; `what` is "stage" or "phase"."""
    for i, name in enumerate(names):
        if name == key or str(i + 1) == key:
            return i
    raise LemlabError(f"no {what} {key!r} in {path} ({what}s: {', '.join(names)})")


def require_paths(doc: dict[str, Any], keys: Sequence[str], path: Path) -> None:
    for key in keys:
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise LemlabError(f"{path}: {key} (a path) is required")


def step_tables(raw: Any, path: Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, a copy of the table) for each `[[what]]`: at least one, each a table."""
    if not isinstance(raw, list) or not raw:
        raise LemlabError(f"{path}: at least one [[{what}]] is required")
    for n, item in enumerate(raw, 1):
        where = f"{path} {what} {n}"
        if not isinstance(item, dict):
            raise LemlabError(f"{where}: must be a table")
        yield where, dict(item)


_PATH_SUFFIXES = (".toml", ".json", ".jsonl", ".txt", ".md")


def looks_like_path(spec: str) -> bool:
    """A plan's value names a file (made absolute against the plan's folder), not a name."""
    return "/" in spec or "\\" in spec or Path(spec).suffix.lower() in _PATH_SUFFIXES
