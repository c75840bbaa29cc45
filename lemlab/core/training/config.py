"""The resolved LoRA training configuration (defaults < TOML file < flags), its TOML form, and
the "effective gradient" figures with the small-model warning.

Defaults are mlx-lm 0.32's own except four, which are the safe settings for small models
(the addendum's fix for the collapsed 1B run): 400 iterations, batch 1, learning rate 5e-6, and,
when the model's layer count is known, about 30% of its layers (`default_num_layers`). So the
defaults never trigger lemlab's own small-model warning; pass flags to get mlx-lm's values.
TOML layout (`lemlab-train.toml`, also accepted by `lemlab train -c`):

    schema_version = 1
    [train]
    model = "..."   # every field of TrainingConfig; absent keys take the defaults

Relative paths in a TOML file are resolved against the file's folder. TOML has no null, so
"no resume file" is the empty string.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.files.user_files import check_types, load_toml_file, reject_unknown
from lemlab.core.models.discovery import model_parameters, params_label

SCHEMA_VERSION = 1
PATH_FIELDS = ("model", "data", "adapter_path", "resume_adapter_file")
FINE_TUNE_TYPES = ("lora", "dora")
OPTIMIZERS = ("adam", "adamw", "muon", "sgd", "adafactor")


@dataclass
class TrainingConfig:
    model: str = ""  # model folder (local path; Hugging Face ids are not fetched here)
    data: str = ""  # folder with train.jsonl and valid.jsonl
    adapter_path: str = "adapters"  # output folder: adapters, checkpoints, events, log
    iters: int = 400  # optimizer steps (mlx-lm: 1000)
    batch_size: int = 1  # (mlx-lm: 4)
    num_layers: int = 8  # trained layers, counted from the top; -1 = all (mlx-lm: 16)
    learning_rate: float = 5e-6  # (mlx-lm: 1e-5)
    rank: int = 8  # LoRA rank
    scale: float = 20.0  # LoRA scale (alpha)
    dropout: float = 0.0
    max_seq_length: int = 2048
    grad_checkpoint: bool = False
    mask_prompt: bool = False  # loss on the assistant turn only
    save_every: int = 100  # checkpoint NNNNNNN_adapters.safetensors every N steps
    steps_per_eval: int = 200
    steps_per_report: int = 10
    seed: int = 0
    val_batches: int = 25  # -1 = the whole validation set
    resume_adapter_file: str = ""  # weights only: no optimizer state, iteration restarts at 1
    fine_tune_type: str = "lora"  # lora or dora
    optimizer: str = "adam"

    def validate(self) -> None:
        """Raise LemlabError (one line) on values mlx-lm would reject mid-run."""
        for name in ("iters", "batch_size", "rank", "save_every", "steps_per_eval",
                     "steps_per_report", "max_seq_length"):
            if getattr(self, name) < 1:
                raise LemlabError(f"{name} must be at least 1 (got {getattr(self, name)})")
            # Upper bounds: a rank or batch of millions makes MLX allocate until it dies.
            if getattr(self, name) > _UPPER.get(name, 10**9):
                raise LemlabError(f"{name} must be at most {_UPPER.get(name, 10**9)} (got {getattr(self, name)})")
        if self.num_layers == 0 or self.num_layers < -1:
            raise LemlabError(f"num_layers must be -1 (all) or at least 1 (got {self.num_layers})")
        if self.val_batches == 0 or self.val_batches < -1:
            raise LemlabError(f"val_batches must be -1 (all) or at least 1 (got {self.val_batches})")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise LemlabError(f"learning_rate must be a positive number (got {self.learning_rate})")
        if not 0 <= self.dropout < 1:
            raise LemlabError(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.fine_tune_type not in FINE_TUNE_TYPES:
            raise LemlabError(f"fine_tune_type must be one of {', '.join(FINE_TUNE_TYPES)}")
        if self.optimizer not in OPTIMIZERS:
            raise LemlabError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")

    def mlx_lm_args(self) -> dict[str, Any]:
        """The argument namespace mlx-lm's trainer and adapter_config.json expect."""
        out = {k: v for k, v in asdict(self).items() if k not in ("rank", "scale", "dropout")}
        out.update(
            lora_parameters={"rank": self.rank, "scale": self.scale, "dropout": self.dropout},
            resume_adapter_file=self.resume_adapter_file or None,
            optimizer_config={self.optimizer: {}},
            train=True, test=False, test_batches=0, lr_schedule=None, config=None,
            grad_accumulation_steps=1, clear_cache_threshold=0, report_to=None,
            project_name=None, trust_remote_code=False,
        )
        return out


_UPPER = {"batch_size": 4096, "rank": 4096, "max_seq_length": 1 << 20}
FIELD_NAMES = tuple(f.name for f in fields(TrainingConfig))
_FIELD_TYPES = {f.name: type(getattr(TrainingConfig(), f.name)) for f in fields(TrainingConfig)}


def check_keys(values: dict[str, Any], where: str) -> None:
    """Unknown keys are errors, with a "did you mean" hint (a typo would silently do nothing)."""
    reject_unknown(values, FIELD_NAMES, where, "training setting")


def coerce_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Type-check TOML values; ints are accepted for float fields (learning_rate = 1)."""
    return check_types(values, _FIELD_TYPES, where)


def _flatten_lora(values: dict[str, Any]) -> dict[str, Any]:
    # mlx-lm configs nest rank/scale/dropout under lora_parameters; accept that shape too.
    values = dict(values)
    lora = values.pop("lora_parameters", None)
    if isinstance(lora, dict):
        for key in ("rank", "scale", "dropout"):
            if key in lora:
                values.setdefault(key, lora[key])
    return values


def read_config_toml(path: str | Path) -> dict[str, Any]:
    """Settings given in a TOML file (only those present), paths made absolute."""
    p = Path(path)
    doc = load_toml_file(p, "config")
    table = doc.get("train", {k: v for k, v in doc.items() if k != "schema_version"})
    if not isinstance(table, dict):
        raise LemlabError(f"{p}: [train] must be a table")
    values = _flatten_lora(table)
    check_keys(values, str(p))
    values = coerce_values(values, str(p))
    return absolutize(values, p.parent)


def embedded_settings(
    values: dict[str, Any], where: str, base: Path, *, fixed: tuple[str, ...], set_by: str
) -> dict[str, Any]:
    """Training settings inside another TOML file (a curriculum stage, a pipeline phase): the
    `fixed` keys are that file's to set (`set_by` says how), the rest checked, paths absolute."""
    for key in fixed:
        if key in values:
            raise LemlabError(f"{where}: {key} is set by {set_by}")
    check_keys(values, where)
    return absolutize(coerce_values(values, where), base)


def absolutize(values: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(values)
    for key in PATH_FIELDS:
        if out.get(key):
            out[key] = str((base / Path(out[key]).expanduser()).resolve())
    return out


def resolve_config(*layers: dict[str, Any]) -> TrainingConfig:
    """Defaults, then each layer in order (later wins); None values in a layer are ignored."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if v is not None})
    check_keys(merged, "settings")
    cfg = TrainingConfig(**merged)
    cfg.validate()
    return cfg


def config_to_toml(cfg: TrainingConfig) -> str:
    return tomli_w.dumps({"schema_version": SCHEMA_VERSION, "train": asdict(cfg)})


def write_config_toml(cfg: TrainingConfig, path: str | Path) -> None:
    write_text_atomic(path, config_to_toml(cfg))


def load_config_toml(path: str | Path) -> TrainingConfig:
    return resolve_config(read_config_toml(path))


# ---------------------------------------------------------------- model facts


@dataclass(frozen=True)
class ModelFacts:
    num_layers: int | None
    params: int | None  # counted from safetensors headers (quantized weights unpacked)


def read_model_facts(model_dir: str | Path) -> ModelFacts:
    d = Path(model_dir)
    try:
        cfg = json.loads((d / "config.json").read_text())
    except (OSError, ValueError, RecursionError):
        return ModelFacts(None, None)
    if not isinstance(cfg, dict):
        return ModelFacts(None, None)
    raw_text_cfg = cfg.get("text_config")
    text_cfg: dict[str, Any] = raw_text_cfg if isinstance(raw_text_cfg, dict) else {}
    layers = cfg.get("num_hidden_layers", text_cfg.get("num_hidden_layers"))
    bits = (cfg.get("quantization") or {}).get("bits") if isinstance(cfg.get("quantization"), dict) else None
    return ModelFacts(layers if isinstance(layers, int) else None, count_params(d, bits))


def count_params(model_dir: Path, bits: int | None = None) -> int | None:
    """The parameter count the Models pane shows too (discovery.model_parameters: quantized
    weights counted as the values they pack, at each module's own bits). `bits` is unused: the
    config's per-module bits are read there."""
    return model_parameters(model_dir)


# ---------------------------------------------------------------- effective gradient

# Small-model heuristic (documented in `lemlab train --help`): fewer than 3 billion parameters
# or fewer than 30 layers. Gemma 3 1B (26 layers) is small; Gemma 3 4B (34 layers) is not.
SMALL_PARAMS = 3_000_000_000
SMALL_LAYERS = 30
# Risk thresholds from the collapsed 1B run (LR 1e-5, 16 of 26 layers, batch 4, 500 iters =
# ~2,000 effective steps) against the 27B run that worked (LR 5e-6, 25.8% of layers, batch 1,
# 400 iters). 1,000 effective steps is half the collapsed run and 2.5x the working one.
RISKY_LR = 1e-5
RISKY_LAYER_FRACTION = 0.5
RISKY_BATCH = 4
RISKY_EFFECTIVE = 1000
RECOMMENDED_LR = 5e-6
RECOMMENDED_LAYER_FRACTION = 0.3
RECOMMENDED_BATCH = 1
RECOMMENDED_ITERS = 400  # the 27B run that worked: 400 x batch 1


@dataclass(frozen=True)
class GradientFigures:
    model_layers: int | None
    trained_layers: int  # -1 resolved to all when the model's layer count is known
    layer_fraction: float | None
    iters: int
    batch_size: int
    learning_rate: float
    model_params: int | None

    @property
    def effective_gradient(self) -> int:
        """Examples pushed through the optimizer: iterations x batch size."""
        return self.iters * self.batch_size

    @property
    def small_model(self) -> bool:
        if self.model_params is not None and self.model_params < SMALL_PARAMS:
            return True
        return self.model_layers is not None and self.model_layers < SMALL_LAYERS


def gradient_figures(cfg: TrainingConfig, facts: ModelFacts) -> GradientFigures:
    trained = cfg.num_layers
    if trained == -1 and facts.num_layers:
        trained = facts.num_layers
    fraction = trained / facts.num_layers if facts.num_layers and trained > 0 else None
    return GradientFigures(
        facts.num_layers, trained, fraction, cfg.iters, cfg.batch_size, cfg.learning_rate, facts.params
    )


def format_figures(fig: GradientFigures) -> list[str]:
    layers = f"{fig.trained_layers} / {fig.model_layers}" if fig.model_layers else f"{fig.trained_layers} / ?"
    if fig.layer_fraction is not None:
        layers += f" ({fig.layer_fraction:.3f} = {fig.layer_fraction:.1%})"

    params = params_label(fig.model_params) if fig.model_params else "unknown"
    return [
        f"model parameters    {params}",
        f"trained layers      {layers}",
        f"iterations x batch  {fig.iters:,} x {fig.batch_size} = {fig.effective_gradient:,} examples",
        f"learning rate       {fig.learning_rate:.1e}",
        f"effective gradient  ~{fig.effective_gradient:,} steps (iters x batch)",
    ]


def risk_factors(fig: GradientFigures) -> list[str]:
    """What in this configuration resembles the run that collapsed a 1B model."""
    out = []
    if fig.learning_rate >= RISKY_LR:
        out.append(f"learning rate {fig.learning_rate:.1e} >= {RISKY_LR:.0e}")
    if fig.layer_fraction is not None and fig.layer_fraction > RISKY_LAYER_FRACTION:
        out.append(f"{fig.layer_fraction:.0%} of layers trained (> {RISKY_LAYER_FRACTION:.0%})")
    if fig.batch_size >= RISKY_BATCH:
        out.append(f"batch size {fig.batch_size} >= {RISKY_BATCH}")
    if fig.effective_gradient >= RISKY_EFFECTIVE:
        out.append(f"~{fig.effective_gradient:,} effective steps (>= {RISKY_EFFECTIVE:,})")
    return out


def small_model_warning(fig: GradientFigures) -> list[str]:
    """Warning lines for a small model given a 1B-collapse-like configuration; [] when fine."""
    if not fig.small_model:
        return []
    factors = risk_factors(fig)
    if not factors:
        return []
    flags = recommended_flags(fig)
    return [
        "warning: small model with a configuration like the one that collapsed a 1B model "
        "(LR 1e-5, 16/26 layers, batch 4, ~2,000 effective steps):",
        "  " + "; ".join(factors),
        "  suggested: " + (" ".join(flags) if flags else "(no smaller setting exists for this model)"),
    ]


def default_num_layers(model_layers: int | None) -> int:
    """Trained layers when none are given: ~30% of the model's (the addendum's 8 of 26), at
    least 1; the dataclass default when the layer count is unknown."""
    if not model_layers:
        return TrainingConfig.num_layers
    return max(1, round(model_layers * RECOMMENDED_LAYER_FRACTION))


def recommended_flags(fig: GradientFigures) -> list[str]:
    """Flags that clear every risk factor of `fig`, each one different from the value passed
    (a suggestion that repeats the user's own flags helps nobody). Empty only when nothing
    smaller exists (a 1-layer model trained whole)."""
    flags: list[str] = []
    if fig.learning_rate >= RISKY_LR:
        flags.append(f"--learning-rate {RECOMMENDED_LR:.0e}")
    if fig.layer_fraction is not None and fig.layer_fraction > RISKY_LAYER_FRACTION and fig.model_layers:
        n = default_num_layers(fig.model_layers)
        if n < fig.trained_layers:
            flags.append(f"--num-layers {n}  (~{n / fig.model_layers:.0%} of {fig.model_layers})")
    batch = fig.batch_size
    if batch >= RISKY_BATCH:
        batch = RECOMMENDED_BATCH
        flags.append(f"--batch-size {batch}")
    if fig.iters * batch >= RISKY_EFFECTIVE:
        iters = min(RECOMMENDED_ITERS, (RISKY_EFFECTIVE - 1) // batch)
        flags.append(f"--iters {iters}  (~{iters * batch:,} effective steps)")
    return flags
