"""Staged training curricula (TOML) and their state file.

    schema_version = 1
    base_model = "models/gemma-3-1b-it"      # paths are relative to this file
    output = "runs/lek-1b"
    [defaults]                               # any training setting, for every stage
    rank = 8
    [[stage]]
    name = "ethics"
    data = "data/ethics"
    iters = 200
    learning_rate = 5e-6
    num_layers = 8
    batch_size = 1

Stage N trains on stage N-1's fused model (the base model for stage 1). Layout under `output`:
`NN-name/adapter/` (adapters, checkpoints, events.jsonl) and `NN-name/fused/` (merged weights,
written only when a later stage needs them). `curriculum-state.toml` records progress.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.training_config import (
    TrainingConfig,
    absolutize,
    check_keys,
    coerce_values,
    resolve_config,
)

SCHEMA_VERSION = 1
STATE_FILE = "curriculum-state.toml"
_TOP_KEYS = {"schema_version", "base_model", "output", "defaults", "stage"}


@dataclass
class Stage:
    name: str
    settings: dict[str, Any]  # training settings for this stage (data included), paths absolute


@dataclass
class Curriculum:
    path: Path
    base_model: Path
    output: Path
    defaults: dict[str, Any] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)

    def stage_dir(self, i: int) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", self.stages[i].name.lower()).strip("-") or "stage"
        return self.output / f"{i + 1:02d}-{slug}"

    def adapter_dir(self, i: int) -> Path:
        return self.stage_dir(i) / "adapter"

    def fused_dir(self, i: int) -> Path:
        return self.stage_dir(i) / "fused"

    def input_model(self, i: int) -> Path:
        """The weights stage i trains on: the base model, or the previous stage fused."""
        return self.base_model if i == 0 else self.fused_dir(i - 1)

    def needs_fuse(self, i: int) -> bool:
        return i < len(self.stages) - 1

    def stage_config(self, i: int) -> TrainingConfig:
        fixed = {"model": str(self.input_model(i)), "adapter_path": str(self.adapter_dir(i))}
        return resolve_config(self.defaults, self.stages[i].settings, fixed)

    def find_stage(self, key: str) -> int:
        """A stage by name or 1-based number."""
        for i, st in enumerate(self.stages):
            if st.name == key or str(i + 1) == key:
                return i
        names = ", ".join(s.name for s in self.stages)
        raise LemlabError(f"no stage {key!r} in {self.path} (stages: {names})")


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise LemlabError(f"{where}: {key} must be a table")
    return value


def _settings(values: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    for key in ("model", "adapter_path"):
        if key in values:
            raise LemlabError(f"{where}: {key} is set by the curriculum (base_model / output)")
    check_keys(values, where)
    values = coerce_values(values, where)
    return absolutize(values, base)


def load_curriculum(path: str | Path) -> Curriculum:
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise LemlabError(f"curriculum file not found: {p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LemlabError(f"{p}: not valid TOML ({exc})") from None
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise LemlabError(f"{p}: unknown key {sorted(unknown)[0]!r} (expected {', '.join(sorted(_TOP_KEYS))})")
    for key in ("base_model", "output"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise LemlabError(f"{p}: {key} (a path) is required")
    base = p.parent.resolve()
    cur = Curriculum(p, (base / doc["base_model"]).resolve(), (base / doc["output"]).resolve())
    cur.defaults = _settings(dict(_table(doc, "defaults", str(p))), f"{p} [defaults]", base)
    cur.stages = _stages(doc.get("stage"), p, base)
    return cur


def _stages(raw: Any, p: Path, base: Path) -> list[Stage]:
    if not isinstance(raw, list) or not raw:
        raise LemlabError(f"{p}: at least one [[stage]] is required")
    stages, seen = [], set()
    for n, item in enumerate(raw, 1):
        where = f"{p} stage {n}"
        if not isinstance(item, dict):
            raise LemlabError(f"{where}: must be a table")
        values = dict(item)
        name = values.pop("name", None)
        if not isinstance(name, str) or not name.strip():
            raise LemlabError(f"{where}: name is required")
        if name in seen:
            raise LemlabError(f"{where}: duplicate stage name {name!r}")
        if not values.get("data"):
            raise LemlabError(f"{where} ({name}): data (a folder) is required")
        seen.add(name)
        stages.append(Stage(name, _settings(values, f"{where} ({name})", base)))
    return stages


# ---------------------------------------------------------------- state file


def read_state(cur: Curriculum) -> dict[str, Any]:
    try:
        with open(cur.output / STATE_FILE, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def write_state(cur: Curriculum, statuses: dict[str, str]) -> None:
    """statuses: stage name -> pending / training / trained / stopped / failed / fused."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "curriculum": str(cur.path.resolve()),
        "base_model": str(cur.base_model),
        "updated": datetime.now(UTC).isoformat(),
        "stage": [
            {
                "name": st.name,
                "status": statuses.get(st.name, "pending"),
                "model": str(cur.input_model(i)),
                "adapter": str(cur.adapter_dir(i)),
                "fused": str(cur.fused_dir(i)) if cur.needs_fuse(i) else "",
            }
            for i, st in enumerate(cur.stages)
        ],
    }
    write_text_atomic(cur.output / STATE_FILE, tomli_w.dumps(doc))
