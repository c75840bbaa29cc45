"""Staged training curricula (TOML) and their state file.

    schema_version = 1
    base_model = "models/gemma-3-1b-it"      # paths are relative to this file
    output = "runs/lek-1b"
    requantize = false                       # true: re-quantize fused models (lossy, warned)
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

Fusing into a quantized base writes a DEQUANTIZED model (full-precision weights, about 3-4x the
4-bit files) and later stages train on it: re-quantizing the merged weights rounds away more
than a small learning rate's update. `requantize = true` (or `--requantize`) keeps the 4-bit
size at that cost, with a warning in the plan.

`CurriculumProgress` holds the order of work and the state file for both front ends: the CLI
trains and fuses blocking, the TUI event by event. Fusing itself (engine.fuse, a child process)
is passed in as an `is_fused` check, so this module stays free of the engine layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.files.user_files import load_toml_file, read_toml_or_empty
from lemlab.core.models.folder import read_model_config, read_weight_shapes, weight_files
from lemlab.core.models.safetensors_header import SafetensorsHeaderError
from lemlab.core.safe_text import control_chars
from lemlab.core.training.config import TrainingConfig, embedded_settings, resolve_config
from lemlab.core.training.events import run_finished
from lemlab.core.training.plan_files import find_step, require_paths, step_dir, step_tables
from lemlab.core.training.runs import archive_previous_run
from lemlab.core.training.stage_eval import EVAL_FILE, EvalSettings, parse_eval, read_scores

SCHEMA_VERSION = 1
STATE_FILE = "curriculum-state.toml"
_TOP_KEYS = {"schema_version", "base_model", "output", "requantize", "eval", "defaults", "stage"}


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
    requantize: bool = False  # re-quantize fused models to the base's bits (lossy)
    eval: EvalSettings | None = None  # a small battery after each stage ([eval])

    def stage_dir(self, i: int) -> Path:
        return step_dir(self.output, i, self.stages[i].name, "stage")

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
        return find_step([s.name for s in self.stages], key, self.path, "stage")


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise LemlabError(f"{where}: {key} must be a table")
    return value


def _settings(values: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    return embedded_settings(
        values,
        where,
        base,
        fixed=("model", "adapter_path"),
        set_by="the curriculum (base_model / output)",
    )


def load_curriculum(path: str | Path) -> Curriculum:
    p = Path(path)
    doc = load_toml_file(p, "curriculum")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise LemlabError(
            f"{p}: unknown key {sorted(unknown)[0]!r} (expected {', '.join(sorted(_TOP_KEYS))})"
        )
    require_paths(doc, ("base_model", "output"), p)
    base = p.parent.resolve()
    cur = Curriculum(p, (base / doc["base_model"]).resolve(), (base / doc["output"]).resolve())
    requantize = doc.get("requantize", False)
    if not isinstance(requantize, bool):
        raise LemlabError(f"{p}: requantize must be true or false")
    cur.requantize = requantize
    cur.eval = parse_eval(doc.get("eval"), str(p), base)
    cur.defaults = _settings(dict(_table(doc, "defaults", str(p))), f"{p} [defaults]", base)
    cur.stages = _stages(doc.get("stage"), p, base)
    return cur


def _stages(raw: Any, p: Path, base: Path) -> list[Stage]:
    stages, seen = [], set()
    for where, values in step_tables(raw, p, "stage"):
        name = values.pop("name", None)
        if not isinstance(name, str) or not name.strip():
            raise LemlabError(f"{where}: name is required")
        if control_chars(name):  # names head progress lines and tables: one printable line
            raise LemlabError(
                f"{where}: name {name!r} holds control or invisible characters: "
                "use one line of printable text"
            )
        if name in seen:
            raise LemlabError(f"{where}: duplicate stage name {name!r}")
        if not values.get("data"):
            raise LemlabError(f"{where} ({name}): data (a folder) is required")
        seen.add(name)
        stages.append(Stage(name, _settings(values, f"{where} ({name})", base)))
    return stages


# ---------------------------------------------------------------- state file


def read_state(cur: Curriculum) -> dict[str, Any]:
    return read_toml_or_empty(cur.output / STATE_FILE)


def write_state(
    cur: Curriculum, statuses: dict[str, str], figures: dict[str, dict[str, Any]] | None = None
) -> None:
    """statuses: stage name -> pending / training / trained / stopped / failed / fused;
    figures: stage name -> values shown beside it (losses, battery scores)."""
    figures = figures or {}
    doc = {
        "schema_version": SCHEMA_VERSION,
        "curriculum": str(cur.path.resolve()),
        "base_model": str(cur.base_model),
        "requantize": cur.requantize,
        "updated": datetime.now(UTC).isoformat(),
        "stage": [
            {
                "name": st.name,
                "status": statuses.get(st.name, "pending"),
                "model": str(cur.input_model(i)),
                "adapter": str(cur.adapter_dir(i)),
                "fused": str(cur.fused_dir(i)) if cur.needs_fuse(i) else "",
                **{k: v for k, v in figures.get(st.name, {}).items() if v is not None},
            }
            for i, st in enumerate(cur.stages)
        ],
    }
    write_text_atomic(cur.output / STATE_FILE, tomli_w.dumps(doc))


# ---------------------------------------------------------------- progress (CLI and TUI)

FusedCheck = Callable[[Path], bool]  # engine.fuse.is_fused: the merged model is complete


def eval_file(cur: Curriculum, i: int) -> Path:
    return cur.stage_dir(i) / EVAL_FILE


def eval_done(cur: Curriculum, i: int) -> bool:
    """No [eval] table, or stage i's battery file has its summary line."""
    return cur.eval is None or read_scores(eval_file(cur, i)) is not None


def stage_done(cur: Curriculum, i: int) -> bool:
    """The stage's adapter run ended with a done event: a rerun skips its training."""
    return run_finished(cur.adapter_dir(i))


def saved_statuses(cur: Curriculum) -> dict[str, str]:
    """Stage name -> status from the state file (pending for stages it does not name)."""
    old = {s.get("name"): s.get("status", "pending") for s in read_state(cur).get("stage", [])}
    return {st.name: old.get(st.name, "pending") for st in cur.stages}


@dataclass(frozen=True)
class FuseJob:
    """One fuse: stage `stage`'s adapter merged into the weights it trained on."""

    stage: int
    model: Path
    adapter: Path
    out: Path
    log: Path
    size_bytes: int  # estimated size of the merged model (dequantized unless requantize)
    requantize: bool = False
    quant_bits: int | None = None  # the input model's quantization bits, None if unquantized

    def describe(self) -> str:
        """What the merged model will be, for plans and dialogs."""
        if self.quant_bits is None:
            return "full precision, like the model it starts from"
        if self.requantize:
            return (
                f"RE-QUANTIZED to {self.quant_bits}-bit (requantize = true): rounding loses "
                "part of the stage's update"
            )
        return (
            f"dequantized from {self.quant_bits}-bit to full precision, so the stage's update "
            "is kept exactly; the next stage trains on it"
        )


_DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "U32": 4,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


def quant_bits(model: Path) -> int | None:
    """The model's quantization bits from config.json (None when unquantized or unreadable)."""
    try:
        cfg = read_model_config(model)
    except LemlabError:
        return None
    q = cfg.get("quantization") or cfg.get("quantization_config")
    if not isinstance(q, dict):
        return None
    bits = q.get("bits")
    return bits if isinstance(bits, int) else 4


def dequantized_size(model: Path) -> int:
    """Bytes of the model with every quantized tensor expanded to its scales' dtype, read from
    the safetensors headers (a quantized X.weight has X.scales, one per group of values)."""
    try:
        shapes = read_weight_shapes(model)
        q = read_model_config(model).get("quantization") or {}
    except (LemlabError, SafetensorsHeaderError):
        return 0
    group = q.get("group_size", 64) if isinstance(q, dict) else 64
    total = 0
    for name, t in shapes.items():
        stem = name.rsplit(".", 1)[0]
        scales = shapes.get(stem + ".scales")
        if name.endswith((".scales", ".biases")) and scales is not None:
            continue  # folded into the dequantized weight
        if name.endswith(".weight") and scales is not None:
            total += scales.numel * group * _DTYPE_BYTES.get(scales.dtype, 2)
        else:
            total += t.numel * _DTYPE_BYTES.get(t.dtype, 2)
    return total


def fuse_job(cur: Curriculum, i: int) -> FuseJob:
    model = cur.input_model(i)
    size = sum(f.stat().st_size for f in weight_files(model)) if model.is_dir() else 0
    bits = quant_bits(model) if model.is_dir() else None
    if bits is not None and not cur.requantize:
        size = dequantized_size(model) or size
    return FuseJob(
        i,
        model,
        cur.adapter_dir(i),
        cur.fused_dir(i),
        cur.stage_dir(i) / "fuse.log",
        size,
        cur.requantize,
        bits,
    )


@dataclass(frozen=True)
class StageRow:
    number: int
    name: str
    data: str
    iters: int
    learning_rate: float
    num_layers: int
    status: str  # done, trained (not fused), stopped, pending


def stage_status(cur: Curriculum, i: int, is_fused: FusedCheck, saved: str = "pending") -> str:
    if stage_done(cur, i):
        return (
            "trained (not fused)"
            if cur.needs_fuse(i) and not is_fused(cur.fused_dir(i))
            else "done"
        )
    return "stopped" if saved in ("stopped", "failed", "training") else "pending"


def _near(path: Path, base: Path) -> str:
    """A path as written next to the curriculum file when it lies under it (shorter to read)."""
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def stage_rows(cur: Curriculum, is_fused: FusedCheck) -> list[StageRow]:
    """What a plan view shows per stage, read from the files on disk."""
    saved = saved_statuses(cur)
    rows = []
    for i, st in enumerate(cur.stages):
        cfg = cur.stage_config(i)
        rows.append(
            StageRow(
                i + 1,
                st.name,
                _near(Path(cfg.data), cur.path.parent.resolve()),
                cfg.iters,
                cfg.learning_rate,
                cfg.num_layers,
                stage_status(cur, i, is_fused, saved[st.name]),
            )
        )
    return rows


class CurriculumProgress:
    """The stages still to run, in order, and the state file. The caller trains and fuses."""

    def __init__(self, cur: Curriculum, todo: list[int] | None = None) -> None:
        self.cur = cur
        self.todo = list(range(len(cur.stages))) if todo is None else todo
        self.statuses = saved_statuses(cur)
        keep = ("final_val_loss", "fused_val_loss", "eval_file", "battery_before", "battery_after")
        self.figures: dict[str, dict[str, Any]] = {
            s["name"]: {k: s[k] for k in keep if k in s}
            for s in read_state(cur).get("stage", [])
            if isinstance(s.get("name"), str)
        }

    def set(self, i: int, status: str, *, save: bool = True) -> None:
        self.statuses[self.cur.stages[i].name] = status
        if save:
            self.save()

    def save(self) -> None:
        write_state(self.cur, self.statuses, self.figures)

    def note(self, i: int, **values: Any) -> None:
        """Figures for stage i's row in the state file (saved with the next status)."""
        self.figures.setdefault(self.cur.stages[i].name, {}).update(values)

    def begin_training(self, i: int) -> None:
        archive_previous_run(self.cur.adapter_dir(i))  # an interrupted attempt: keep its events
        self.set(i, "training")

    def next_step(self, is_fused: FusedCheck) -> tuple[str, int] | None:
        """("train", i), ("eval", i) or ("fuse", i) for the first stage with work left; None
        when all is done. Stages passed over are marked trained / fused (not saved until the
        next write)."""
        for i in self.todo:
            if not stage_done(self.cur, i):
                return "train", i
            if not eval_done(self.cur, i):
                return "eval", i
            needs = self.cur.needs_fuse(i)
            if needs and not is_fused(self.cur.fused_dir(i)):
                self.set(i, "trained", save=False)
                return "fuse", i
            self.set(i, "fused" if needs else "trained", save=False)
        return None
