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
"no resume file" is the empty string and "no schedule" the empty table.

Every option of mlx-lm's own `mlx_lm lora` (its CONFIG_DEFAULTS) is either a field here or in
MLX_LM_FIXED (options with no meaning in a lemlab run); tests/test_train_mlx_lm_fields.py fails
when mlx-lm gains or drops one. mlx-lm config shapes are kept: `lr_schedule` is
`{name, arguments, warmup, warmup_init}` (mlx_lm.tuner.utils.build_schedule), and
`optimizer_config` maps an optimizer name to its keyword arguments, e.g.

    [train.optimizer_config.adamw]
    weight_decay = 0.05
    [train.lr_schedule]
    name = "cosine_decay"
    arguments = [1e-5, 400, 1e-7]   # init, decay_steps, end
    warmup = 20
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.files.user_files import check_types, load_toml_file, reject_unknown
from lemlab.core.models.discovery import model_parameters, params_label

SCHEMA_VERSION = 1
PATH_FIELDS = ("model", "data", "adapter_path", "resume_adapter_file")
FINE_TUNE_TYPES = ("lora", "dora", "full")  # full: every parameter of the trained layers
OPTIMIZERS = ("adam", "adamw", "muon", "sgd", "adafactor")

# Keyword arguments each optimizer takes besides learning_rate (mlx.optimizers 0.x signatures;
# a test compares them): "float" accepts ints, "pair" is a list of two numbers.
OPTIMIZER_SETTINGS: dict[str, dict[str, str]] = {
    "adam": {"betas": "pair", "eps": "float", "bias_correction": "bool"},
    "adamw": {"betas": "pair", "eps": "float", "weight_decay": "float", "bias_correction": "bool"},
    "muon": {"momentum": "float", "weight_decay": "float", "nesterov": "bool", "ns_steps": "int"},
    "sgd": {"momentum": "float", "weight_decay": "float", "dampening": "float", "nesterov": "bool"},
    "adafactor": {
        "eps": "pair",
        "clip_threshold": "float",
        "decay_rate": "float",
        "beta_1": "float",
        "weight_decay": "float",
        "scale_parameter": "bool",
        "relative_step": "bool",
        "warmup_init": "bool",
    },
}
# mlx.optimizers.schedulers usable from a config file: each argument's name and kind, and how
# many are required (join_schedules takes other schedules, which a file cannot hold).
LR_SCHEDULES: dict[str, tuple[tuple[tuple[str, str], ...], int]] = {
    "cosine_decay": ((("init", "float"), ("decay_steps", "int"), ("end", "float")), 2),
    "exponential_decay": ((("init", "float"), ("decay_rate", "float")), 2),
    "step_decay": ((("init", "float"), ("decay_rate", "float"), ("step_size", "int")), 3),
    "linear_schedule": ((("init", "float"), ("end", "float"), ("steps", "int")), 3),
}
LR_SCHEDULE_KEYS = ("name", "arguments", "warmup", "warmup_init")

# mlx-lm options that have no meaning in a lemlab run, with the value adapter_config.json records.
MLX_LM_FIXED: dict[str, Any] = {
    "train": True,  # the child always trains (`lemlab train` is the only way in)
    "test": False,  # no test-set pass after training: lemlab evaluates with batteries
    "test_batches": 0,  # (goes with test)
    "config": None,  # mlx-lm's YAML file; lemlab reads its own TOML (`lemlab train -c`)
    "report_to": None,  # wandb / swanlab: lemlab writes events.jsonl instead
    "project_name": None,  # (goes with report_to)
    "trust_remote_code": False,  # never: models are local folders loaded without their code
}


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
    fine_tune_type: str = "lora"  # lora, dora or full
    optimizer: str = "adam"
    optimizer_config: dict[str, Any] = field(default_factory=dict)  # {optimizer: {kwarg: value}}
    lr_schedule: dict[str, Any] = field(default_factory=dict)  # {} = constant learning_rate
    grad_accumulation_steps: int = 1  # batches whose gradients make one optimizer update
    clear_cache_threshold: int = 0  # bytes; clear MLX's allocator cache above it (0 = never)

    @property
    def peak_learning_rate(self) -> float:
        """The largest learning rate the run uses: the schedule's, when there is one."""
        if not self.lr_schedule:
            return self.learning_rate
        args = [float(a) for a in self.lr_schedule["arguments"]]
        rates = [args[0], float(self.lr_schedule.get("warmup_init", 0.0))]
        if self.lr_schedule["name"] == "linear_schedule":
            rates.append(args[1])
        return max(rates)

    def validate(self) -> None:
        """Raise LemlabError (one line) on values mlx-lm would reject mid-run."""
        for name in (
            "iters",
            "batch_size",
            "rank",
            "save_every",
            "steps_per_eval",
            "steps_per_report",
            "max_seq_length",
            "grad_accumulation_steps",
        ):
            if getattr(self, name) < 1:
                raise LemlabError(f"{name} must be at least 1 (got {getattr(self, name)})")
            # Upper bounds: a rank or batch of millions makes MLX allocate until it dies.
            if getattr(self, name) > _UPPER.get(name, 10**9):
                raise LemlabError(
                    f"{name} must be at most {_UPPER.get(name, 10**9)} (got {getattr(self, name)})"
                )
        if self.num_layers == 0 or self.num_layers < -1:
            raise LemlabError(f"num_layers must be -1 (all) or at least 1 (got {self.num_layers})")
        if self.val_batches == 0 or self.val_batches < -1:
            raise LemlabError(
                f"val_batches must be -1 (all) or at least 1 (got {self.val_batches})"
            )
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise LemlabError(f"learning_rate must be a positive number (got {self.learning_rate})")
        if not 0 <= self.dropout < 1:
            raise LemlabError(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.fine_tune_type not in FINE_TUNE_TYPES:
            raise LemlabError(f"fine_tune_type must be one of {', '.join(FINE_TUNE_TYPES)}")
        if self.optimizer not in OPTIMIZERS:
            raise LemlabError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.clear_cache_threshold < 0:
            raise LemlabError(
                f"clear_cache_threshold must be 0 (never) or a byte count (got {self.clear_cache_threshold})"
            )
        _check_optimizer_config(self.optimizer_config)
        _check_lr_schedule(self.lr_schedule)

    def mlx_lm_args(self) -> dict[str, Any]:
        """The argument namespace mlx-lm's trainer and adapter_config.json expect."""
        out = {k: v for k, v in asdict(self).items() if k not in ("rank", "scale", "dropout")}
        lora = {"rank": self.rank, "scale": self.scale, "dropout": self.dropout}
        out.update(
            # mlx-lm's train_model records None for a full fine-tune (there are no LoRA layers).
            lora_parameters=None if self.fine_tune_type == "full" else lora,
            resume_adapter_file=self.resume_adapter_file or None,
            optimizer_config={self.optimizer: {}, **self.optimizer_config},
            lr_schedule=self.lr_schedule or None,
            **MLX_LM_FIXED,
        )
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _kind_ok(kind: str, value: Any) -> bool:
    if kind == "float":
        return _is_number(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)  # pair


_KIND_WORDS = {
    "float": "a number",
    "int": "a whole number",
    "bool": "true or false",
    "pair": "a list of two numbers",
}


def _check_optimizer_config(config: dict[str, Any]) -> None:
    for name, settings in config.items():
        if name not in OPTIMIZER_SETTINGS:
            raise LemlabError(
                f"optimizer_config: unknown optimizer {name!r} (one of {', '.join(OPTIMIZERS)})"
            )
        if not isinstance(settings, dict):
            raise LemlabError(f"optimizer_config.{name} must be a table of {name}'s settings")
        known = OPTIMIZER_SETTINGS[name]
        for key, value in settings.items():
            if key not in known:
                raise LemlabError(
                    f"optimizer_config.{name}: unknown setting {key!r} "
                    f"({name} takes {', '.join(known)})"
                )
            if not _kind_ok(known[key], value):
                raise LemlabError(
                    f"optimizer_config.{name}.{key} must be {_KIND_WORDS[known[key]]} (got {value!r})"
                )


def _check_lr_schedule(schedule: dict[str, Any]) -> None:
    if not schedule:
        return
    unknown = [k for k in schedule if k not in LR_SCHEDULE_KEYS]
    if unknown:
        raise LemlabError(
            f"lr_schedule: unknown key {unknown[0]!r} (keys: {', '.join(LR_SCHEDULE_KEYS)})"
        )
    name = schedule.get("name")
    if name not in LR_SCHEDULES:
        raise LemlabError(
            f"lr_schedule.name must be one of {', '.join(LR_SCHEDULES)} (got {name!r})"
        )
    params, required = LR_SCHEDULES[name]
    args = schedule.get("arguments")
    usage = f"{name} takes [{', '.join(p for p, _ in params)}]"
    if not isinstance(args, list) or not required <= len(args) <= len(params):
        raise LemlabError(f"lr_schedule.arguments: {usage} (got {args!r})")
    for (param, kind), value in zip(params, args, strict=False):
        if not _kind_ok(kind, value) or (kind == "int" and value < 1):
            word = "a whole number of at least 1" if kind == "int" else "a number"
            raise LemlabError(
                f"lr_schedule.arguments: {param} must be {word} (got {value!r}; {usage})"
            )
    if not args[0] > 0:
        raise LemlabError(
            f"lr_schedule.arguments: init must be a positive learning rate (got {args[0]!r})"
        )
    warmup = schedule.get("warmup", 0)
    if not (isinstance(warmup, int) and not isinstance(warmup, bool) and warmup >= 0):
        raise LemlabError(
            f"lr_schedule.warmup must be a whole number of steps, 0 or more (got {warmup!r})"
        )
    if not _is_number(schedule.get("warmup_init", 0.0)) or schedule.get("warmup_init", 0.0) < 0:
        raise LemlabError(
            f"lr_schedule.warmup_init must be a learning rate, 0 or more "
            f"(got {schedule.get('warmup_init')!r})"
        )


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
    bits = (
        (cfg.get("quantization") or {}).get("bits")
        if isinstance(cfg.get("quantization"), dict)
        else None
    )
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
        facts.num_layers,
        trained,
        fraction,
        cfg.iters,
        cfg.batch_size,
        cfg.peak_learning_rate,
        facts.params,
    )


def format_figures(fig: GradientFigures) -> list[str]:
    layers = (
        f"{fig.trained_layers} / {fig.model_layers}"
        if fig.model_layers
        else f"{fig.trained_layers} / ?"
    )
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
        "  suggested: "
        + (" ".join(flags) if flags else "(no smaller setting exists for this model)"),
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
    if (
        fig.layer_fraction is not None
        and fig.layer_fraction > RISKY_LAYER_FRACTION
        and fig.model_layers
    ):
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
