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
    truncated = "keep"                    # samples cut at max_tokens: keep (marked) | drop
    start_from = "base"                   # base | previous-adapter | previous-fused
    mix_data = ["baseline-lock"]          # earlier phases' data mixed into this training
    [phase.train]                         # optional: any `lemlab train` setting
    iters = 100
    [eval]                                # optional: a small battery after each training
    prompts = "ccp6"                      # (lemlab.core.training.stage_eval)

Chaining phases (the research ran them so): `start_from = "previous-adapter"` samples from the
previous phase's model + adapter and continues training that adapter (its weights; rank and
layers must match); `"previous-fused"` fuses the previous phase's adapter into its model
(dequantized, as a curriculum does) and samples and trains on that. `mix_data` names earlier
phases whose extracted data joins this phase's training data (Phase 0's "baseline lock" data
stays in later training); the mixed folder is `NN-name/train-data/`.

Layout under `output`: `NN-name/prompts.json` (rephrased battery), `NN-name/distill.jsonl` (+
`.progress.jsonl` while it runs), `NN-name/data/{train,valid}.jsonl`, `NN-name/adapter/`,
`NN-name/fused/` (when the next phase starts from it). The state file `pipeline-state.toml`
records each phase's status and figures. Headless: no mlx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.distill import output as d
from lemlab.core.distill.extract import DEDUP_MODES, DEFAULT_SPLIT, DEFAULT_SPLIT_SEED
from lemlab.core.errors import LemlabError
from lemlab.core.files.user_files import (
    check_types,
    load_toml_file,
    read_toml_or_empty,
    reject_unknown,
)
from lemlab.core.safe_text import control_chars
from lemlab.core.training.config import TrainingConfig, embedded_settings, resolve_config
from lemlab.core.training.plan_files import (
    find_step,
    looks_like_path,
    require_paths,
    step_dir,
    step_tables,
)
from lemlab.core.training.stage_eval import EvalSettings, parse_eval

SCHEMA_VERSION = 1
STATE_FILE = "pipeline-state.toml"
_TOP_KEYS = ("schema_version", "model", "adapter", "output", "eval", "phase")
START_FROM = ("base", "previous-adapter", "previous-fused")
STATUSES = (
    "pending",
    "distilling",
    "distilled",
    "nothing-kept",
    "extracted",
    "training",
    "trained",
    "done",
    "stopped",
    "failed",
)


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
    truncated: str = d.DEFAULT_TRUNCATED
    start_from: str = "base"  # base | previous-adapter | previous-fused
    mix_data: list[str] = field(default_factory=list)  # earlier phases' names
    train: dict[str, Any] | None = None  # training settings (paths absolute), None = no training

    def distill_settings(self) -> dict[str, Any]:
        """Keyword arguments of DistillSettings (and prepare_distill) held by this phase."""
        return {
            k: getattr(self, k)
            for k in (
                "samples",
                "threshold",
                "temperature",
                "top_p",
                "max_tokens",
                "seed",
                "scorer",
                "truncated",
            )
        }


_PHASE_TYPES: dict[str, type] = {
    "name": str,
    "prompts": str,
    "rephrase": bool,
    "rephrase_seed": int,
    "kernel": str,
    "samples": int,
    "threshold": float,
    "temperature": float,
    "top_p": float,
    "max_tokens": int,
    "scorer": str,
    "seed": int,
    "dedup": str,
    "split": float,
    "split_seed": int,
    "train": dict,
    "truncated": str,
    "start_from": str,
    "mix_data": list,
}


@dataclass
class Pipeline:
    path: Path
    model: Path
    output: Path
    adapter: Path | None = None
    phases: list[Phase] = field(default_factory=list)
    eval: EvalSettings | None = None  # a small battery after each phase's training ([eval])

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

    def fused_dir(self, i: int) -> Path:
        return self.phase_dir(i) / "fused"

    def needs_fuse(self, i: int) -> bool:
        """The next phase starts from this phase's fused model."""
        return i + 1 < len(self.phases) and self.phases[i + 1].start_from == "previous-fused"

    def input_model(self, i: int) -> Path:
        """The weights phase i samples from and trains on."""
        start = self.phases[i].start_from
        if start == "previous-fused":
            return self.fused_dir(i - 1)
        return self.input_model(i - 1) if start == "previous-adapter" else self.model

    def sampling_adapter(self, i: int) -> Path | None:
        """The adapter on top of input_model while sampling (the pipeline's, or the previous
        phase's when this one continues it)."""
        start = self.phases[i].start_from
        if start == "previous-adapter":
            return self.adapter_dir(i - 1)
        return self.adapter if start == "base" else None

    def train_data_dir(self, i: int) -> Path:
        """The folder the phase trains on: its own data, or its data plus mix_data's."""
        return self.phase_dir(i) / "train-data" if self.phases[i].mix_data else self.data_dir(i)

    def mixed_phases(self, i: int) -> list[int]:
        return [self.find_phase(n) for n in self.phases[i].mix_data]

    def train_config(self, i: int) -> TrainingConfig | None:
        ph = self.phases[i]
        if ph.train is None:
            return None
        fixed = {
            "model": str(self.input_model(i)),
            "data": str(self.train_data_dir(i)),
            "adapter_path": str(self.adapter_dir(i)),
        }
        if ph.start_from == "previous-adapter":
            fixed["resume_adapter_file"] = str(self.adapter_dir(i - 1) / "adapters.safetensors")
        return resolve_config(ph.train, fixed)

    def find_phase(self, key: str) -> int:
        """A phase by name or 1-based number."""
        return find_step([p.name for p in self.phases], key, self.path, "phase")


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
    pipe = Pipeline(
        p,
        (base / doc["model"]).resolve(),
        (base / doc["output"]).resolve(),
        (base / adapter).resolve() if adapter else None,
    )
    pipe.eval = parse_eval(doc.get("eval"), str(p), base)
    pipe.phases = _phases(doc.get("phase"), p, base)
    _check_chaining(pipe)
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
    if control_chars(values["name"]):  # names head progress lines and tables: one printable line
        raise LemlabError(
            f"{where}: name {values['name']!r} holds control or invisible "
            "characters: use one line of printable text"
        )
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
    values = embedded_settings(
        values,
        where,
        base,
        fixed=("model", "data", "adapter_path", "resume_adapter_file"),
        set_by="the pipeline (model / output / start_from)",
    )
    resolve_config(values, {"model": "m", "data": "d"})  # value checks (iters >= 1, ...)
    return values


_LORA_SHAPE = ("fine_tune_type", "rank", "num_layers")  # what a continued adapter must keep


def _check_chaining(pipe: Pipeline) -> None:
    """start_from and mix_data name only what earlier phases produce."""
    for i, ph in enumerate(pipe.phases):
        where = f"{pipe.path} phase {i + 1} ({ph.name})"
        if ph.start_from != "base":
            if i == 0:
                raise LemlabError(
                    f"{where}: start_from {ph.start_from!r} needs a previous phase "
                    "(the first phase starts from the model)"
                )
            prev = pipe.phases[i - 1]
            if prev.train is None:
                raise LemlabError(
                    f"{where}: start_from {ph.start_from!r}, but phase {i} "
                    f"({prev.name}) trains no adapter ([phase.train])"
                )
            if ph.start_from == "previous-adapter" and ph.train is not None:
                mine, theirs = pipe.train_config(i), pipe.train_config(i - 1)
                assert mine is not None and theirs is not None
                for key in _LORA_SHAPE:
                    if getattr(mine, key) != getattr(theirs, key):
                        raise LemlabError(
                            f"{where}: continues phase {i}'s adapter, so {key} must match it "
                            f"({getattr(theirs, key)!r}, not {getattr(mine, key)!r})"
                        )
        for name in ph.mix_data:
            if not isinstance(name, str) or name not in [p.name for p in pipe.phases[:i]]:
                raise LemlabError(
                    f"{where}: mix_data names {name!r}, which is not an earlier phase"
                )
        if ph.mix_data and ph.train is None:
            raise LemlabError(f"{where}: mix_data is for training: add [phase.train]")


def _check_phase(ph: Phase, where: str) -> None:
    if ph.start_from not in START_FROM:
        raise LemlabError(f"{where}: start_from must be one of {', '.join(START_FROM)}")
    if not all(isinstance(n, str) for n in ph.mix_data):
        raise LemlabError(f"{where}: mix_data must be a list of phase names")
    if len(set(ph.mix_data)) != len(ph.mix_data):
        raise LemlabError(f"{where}: mix_data names a phase twice")
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
    doc = {
        "schema_version": SCHEMA_VERSION,
        "pipeline": str(pipe.path.resolve()),
        "model": str(pipe.model),
        "updated": datetime.now(UTC).isoformat(),
        "phase": rows,
    }
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
    if "battery_before" in row and "battery_after" in row:
        b, a = row["battery_before"], row["battery_after"]
        parts.append(f"battery {b:.2f} -> {a:.2f} ({a - b:+.2f})")
    return f"phase {i + 1} {name}: " + ", ".join(parts)
