"""Phase pipelines (TOML): distill -> extract -> optional LoRA training, phase by phase.

    schema_version = 1
    model = "../models/gemma-3-1b-it"    # paths are relative to this file
    adapter = ""                          # optional: sample from base + this adapter
    output = "../runs/lek-phases"

    [[phase]]
    name = "baseline-lock"
    prompts = "creative"                  # battery: shipped name or a file path
    rephrase = false                      # true: rephrase the battery first (x4 probes)
    kernel = ""                           # optional: shipped kernel name or a file path
    samples = 10
    threshold = 15.0
    temperature = 0.9
    top_p = 0.95
    max_tokens = 4096
    scorer = "v2-distill"
    seed = 42                             # sampling seed
    dedup = "all"                         # best | first | all
    split = 0.9                           # train fraction of the data folder
    split_seed = 42
    [phase.train]                         # optional: any `lemlab train` setting
    iters = 100

Layout under `output`: `NN-name/prompts.json` (rephrased battery), `NN-name/distill.jsonl` (+
`.progress.jsonl`), `NN-name/data/{train,valid}.jsonl`, `NN-name/adapter/`. The state file
`pipeline-state.toml` records each phase's status and figures. Headless: no mlx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core import distill as d
from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.extract import DEDUP_MODES, DEFAULT_SPLIT, DEFAULT_SPLIT_SEED
from lemlab.core.plan_files import find_step, require_paths, step_dir, step_tables
from lemlab.core.training_config import TrainingConfig, embedded_settings, resolve_config
from lemlab.core.user_files import (
    check_types,
    load_toml_file,
    read_toml_or_empty,
    reject_unknown,
)

SCHEMA_VERSION = 1
STATE_FILE = "pipeline-state.toml"
_TOP_KEYS = ("schema_version", "model", "adapter", "output", "phase")
_PATH_SUFFIXES = (".toml", ".json", ".jsonl", ".txt", ".md")
STATUSES = ("pending", "distilling", "distilled", "nothing-kept", "extracted", "training",
            "trained", "done", "stopped", "failed")  # fmt: skip


@dataclass
class Phase:
    name: str
    prompts: str  # battery name, or an absolute path
    rephrase: bool = False
    rephrase_seed: int = 0
    kernel: str = ""  # kernel name, or an absolute path; "" = none (Phase 0)
    samples: int = d.DEFAULT_SAMPLES
    threshold: float = d.DEFAULT_THRESHOLD
    temperature: float = d.DEFAULT_TEMPERATURE
    top_p: float = d.DEFAULT_TOP_P
    max_tokens: int = d.DEFAULT_MAX_TOKENS
    scorer: str = d.DEFAULT_SCORER
    seed: int = d.DEFAULT_SEED
    dedup: str = "best"
    split: float = DEFAULT_SPLIT
    split_seed: int = DEFAULT_SPLIT_SEED
    train: dict[str, Any] | None = None  # training settings (paths absolute), None = no training

    def distill_settings(self) -> dict[str, Any]:
        """Keyword arguments of DistillSettings (and prepare_distill) held by this phase."""
        return {k: getattr(self, k) for k in ("samples", "threshold", "temperature", "top_p",
                                              "max_tokens", "seed", "scorer")}  # fmt: skip


_PHASE_TYPES: dict[str, type] = {
    "name": str, "prompts": str, "rephrase": bool, "rephrase_seed": int, "kernel": str,
    "samples": int, "threshold": float, "temperature": float, "top_p": float, "max_tokens": int,
    "scorer": str, "seed": int, "dedup": str, "split": float, "split_seed": int, "train": dict,
}  # fmt: skip


@dataclass
class Pipeline:
    path: Path
    model: Path
    output: Path
    adapter: Path | None = None
    phases: list[Phase] = field(default_factory=list)

    def phase_dir(self, i: int) -> Path:
        return step_dir(self.output, i, self.phases[i].name, "phase")

    def prompts_file(self, i: int) -> Path:
        return self.phase_dir(i) / "prompts.json"

    def distill_file(self, i: int) -> Path:
        return self.phase_dir(i) / "distill.jsonl"

    def data_dir(self, i: int) -> Path:
        return self.phase_dir(i) / "data"

    def adapter_dir(self, i: int) -> Path:
        return self.phase_dir(i) / "adapter"

    def train_config(self, i: int) -> TrainingConfig | None:
        ph = self.phases[i]
        if ph.train is None:
            return None
        fixed = {"model": str(self.model), "data": str(self.data_dir(i)),
                 "adapter_path": str(self.adapter_dir(i))}  # fmt: skip
        return resolve_config(ph.train, fixed)

    def find_phase(self, key: str) -> int:
        """A phase by name or 1-based number."""
        return find_step([p.name for p in self.phases], key, self.path, "phase")


def looks_like_path(spec: str) -> bool:
    return "/" in spec or "\\" in spec or Path(spec).suffix.lower() in _PATH_SUFFIXES


def _rel(base: Path, spec: str) -> str:
    """A path-like spec made absolute against the pipeline file's folder; names stay names."""
    return (
        str((base / Path(spec).expanduser()).resolve()) if spec and looks_like_path(spec) else spec
    )


def load_pipeline(path: str | Path) -> Pipeline:
    p = Path(path)
    doc = load_toml_file(p, "pipeline")
    reject_unknown(doc, _TOP_KEYS, str(p), "key")
    require_paths(doc, ("model", "output"), p)
    adapter = doc.get("adapter", "")
    if not isinstance(adapter, str):
        raise LemlabError(f'{p}: adapter must be a path string ("" for none)')
    base = p.parent.resolve()
    pipe = Pipeline(p, (base / doc["model"]).resolve(), (base / doc["output"]).resolve(),
                    (base / adapter).resolve() if adapter else None)  # fmt: skip
    pipe.phases = _phases(doc.get("phase"), p, base)
    return pipe


def _phases(raw: Any, p: Path, base: Path) -> list[Phase]:
    phases: list[Phase] = []
    for where, values in step_tables(raw, p, "phase"):
        phase = _phase(values, where, base)
        if any(ph.name == phase.name for ph in phases):
            raise LemlabError(f"{where}: duplicate phase name {phase.name!r}")
        phases.append(phase)
    return phases


def _phase(values: dict[str, Any], where: str, base: Path) -> Phase:
    reject_unknown(values, _PHASE_TYPES, where, "phase setting")
    for key in ("name", "prompts"):
        if not isinstance(values.get(key), str) or not values[key].strip():
            raise LemlabError(f"{where}: {key} is required")
    where = f"{where} ({values['name']})"
    values = check_types(values, _PHASE_TYPES, where)
    values["prompts"] = _rel(base, values["prompts"])
    values["kernel"] = _rel(base, values.get("kernel", ""))
    if "train" in values:
        values["train"] = _train_settings(values["train"], f"{where} [phase.train]", base)
    phase = Phase(**values)
    _check_phase(phase, where)
    return phase


def _train_settings(values: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    values = embedded_settings(values, where, base, fixed=("model", "data", "adapter_path"),
                               set_by="the pipeline (model / output)")  # fmt: skip
    resolve_config(values, {"model": "m", "data": "d"})  # value checks (iters >= 1, ...)
    return values


def _check_phase(ph: Phase, where: str) -> None:
    if ph.dedup not in DEDUP_MODES:
        raise LemlabError(f"{where}: dedup must be one of {', '.join(DEDUP_MODES)}")
    if not 0 < ph.split < 1:
        raise LemlabError(f"{where}: split must be between 0 and 1 (the train fraction)")
    try:
        d.DistillSettings(model="", **ph.distill_settings()).check(as_flags=False)
    except LemlabError as exc:
        raise LemlabError(f"{where}: {exc}") from None


# --- state file --------------------------------------------------------------------------------


def read_state(pipe: Pipeline) -> dict[str, dict[str, Any]]:
    """Phase name -> its state table (status and figures); {} when there is no state yet."""
    doc = read_toml_or_empty(pipe.output / STATE_FILE)
    rows = doc.get("phase", [])
    return {r["name"]: r for r in rows if isinstance(r, dict) and isinstance(r.get("name"), str)}


def write_state(pipe: Pipeline, phases: dict[str, dict[str, Any]]) -> None:
    """Atomically write every phase's row (figures only where known: TOML has no null)."""
    rows = []
    for ph in pipe.phases:
        row = {k: v for k, v in phases.get(ph.name, {}).items() if v is not None}
        row["name"] = ph.name
        row.setdefault("status", "pending")
        rows.append(dict(sorted(row.items(), key=lambda kv: (kv[0] != "name", kv[0] != "status"))))
    doc = {"schema_version": SCHEMA_VERSION, "pipeline": str(pipe.path.resolve()),
           "model": str(pipe.model), "updated": datetime.now(UTC).isoformat(), "phase": rows}  # fmt: skip
    write_text_atomic(pipe.output / STATE_FILE, tomli_w.dumps(doc))


def report_line(i: int, name: str, row: dict[str, Any]) -> str:
    """`phase 1 name: generated 240, kept 100 (41.7%), examples 100 (train 90, valid 10), ...`"""
    parts = [f"status {row.get('status', 'pending')}"]
    if "generated" in row:
        parts.append(f"generated {row['generated']}, kept {row['kept']} ({row['keep_rate']:.1f}%)")
    if "examples" in row:
        parts.append(
            f"examples {row['examples']} (train {row.get('train', '?')}, valid {row.get('valid', '?')})"
        )
    if "avg_kept_score" in row:
        parts.append(f"avg kept score {row['avg_kept_score']:.2f}")
    if "final_loss" in row:
        parts.append(f"final train loss {row['final_loss']:.3f}")
    if "final_val_loss" in row:
        parts.append(f"final val loss {row['final_val_loss']:.3f}")
    return f"phase {i + 1} {name}: " + ", ".join(parts)
