"""Recently opened models and adapters (headless), newest first, in the data folder as TOML.

Written atomically after each successful load; an unreadable or damaged file reads as an empty
list (the list is a convenience: it must never stop a load) and is replaced on the next write."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.paths import get_paths

MAX_RECENT = 12


@dataclass(frozen=True)
class Recent:
    model: str
    adapter: str = ""  # "" for a model alone

    @property
    def label(self) -> str:
        name = Path(self.model).name or self.model
        return name + (f" + {Path(self.adapter).name}" if self.adapter else "")


def recent_file() -> Path:
    return get_paths().data_dir / "recent.toml"


def load_recent(path: Path | None = None) -> list[Recent]:
    try:
        data = tomllib.loads((path or recent_file()).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    out = []
    for item in data.get("opened", []) if isinstance(data.get("opened"), list) else []:
        if isinstance(item, dict) and isinstance(item.get("model"), str) and item["model"]:
            adapter = item.get("adapter")
            out.append(Recent(item["model"], adapter if isinstance(adapter, str) else ""))
    return out


def add_recent(model: str, adapter: str | None = None, path: Path | None = None) -> list[Recent]:
    """Put (model, adapter) first; returns the new list."""
    entry = Recent(model, adapter or "")
    items = [entry, *(r for r in load_recent(path) if r != entry)][:MAX_RECENT]
    rows = [{"model": r.model, **({"adapter": r.adapter} if r.adapter else {})} for r in items]
    write_text_atomic(path or recent_file(), tomli_w.dumps({"opened": rows}))
    return items
