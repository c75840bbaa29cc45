"""The checks before any training starts (the use case `lemlab train`, `lemlab curriculum`,
`lemlab pipeline` and the TUI's Training tab share): one run's settings against its model and
data (preflight_training -> GradientFigures), and every stage of a curriculum with the plan
printed or shown before it runs (preflight_curriculum -> CurriculumPlan). Each raises
LemlabError, one line, on the first problem. Headless: no mlx, no child started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lemlab.core.battery.probes import resolve_battery
from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import weights_misfit
from lemlab.core.models.folder import read_model_config
from lemlab.core.scoring import get_scorer
from lemlab.core.training.config import (
    GradientFigures,
    TrainingConfig,
    format_figures,
    gradient_figures,
    read_model_facts,
    small_model_warning,
)
from lemlab.core.training.curriculum import Curriculum, FuseJob, quant_bits
from lemlab.core.training.data import validate_data_folder
from lemlab.core.training.stage_eval import EVAL_FILE, EvalSettings


@dataclass(frozen=True)
class CurriculumPlan:
    """What a curriculum will do, stage by stage (the lines shown before it starts), and
    whether any stage's settings drew a small-model warning (then it asks first)."""

    lines: list[str]
    warned: bool


def preflight_training(cfg: TrainingConfig) -> GradientFigures:
    """Check everything that can be checked before a child is started; raise LemlabError."""
    model = Path(cfg.model)
    if not model.is_dir():
        raise LemlabError(f"model folder not found: {model}")
    if not (model / "config.json").is_file():
        raise LemlabError(f"{model} has no config.json: not an MLX model folder")

    read_model_config(model)  # garbage config.json: one line now, not after the folder exists
    facts = read_model_facts(model)
    if facts.num_layers and cfg.num_layers > facts.num_layers:
        raise LemlabError(
            f"--num-layers {cfg.num_layers} but the model has {facts.num_layers} layers"
        )
    if cfg.resume_adapter_file and not Path(cfg.resume_adapter_file).is_file():
        raise LemlabError(f"resume adapter file not found: {cfg.resume_adapter_file}")
    if cfg.resume_adapter_file:
        misfit = weights_misfit(cfg.resume_adapter_file, model, cfg.rank)
        if misfit:
            raise LemlabError(
                f"--resume-adapter-file {cfg.resume_adapter_file} does not fit: {misfit}"
            )
    validate_data_folder(cfg.data, cfg.batch_size)
    return gradient_figures(cfg, facts)


def check_eval(ev: EvalSettings) -> None:
    """The [eval] battery and scorer exist (before any training)."""
    try:
        resolve_battery(ev.prompts)
        get_scorer(ev.scorer)
    except LemlabError as exc:
        raise LemlabError(f"[eval]: {exc}") from None


def preflight_curriculum(cur: Curriculum, *, todo: Sequence[int]) -> CurriculumPlan:
    """Check every stage in `todo` (indices, in order) before training any."""
    lines: list[str] = []
    warned = False
    if cur.eval is not None:
        check_eval(cur.eval)
    for i in todo:
        cfg = cur.stage_config(i)
        if i > 0 and cur.input_model(i) != cur.base_model and not cur.input_model(i).exists():
            if todo[0] == i:  # not produced by this run: it must already exist
                prev = cur.stages[i - 1].name
                raise LemlabError(
                    f"stage {cur.stages[i].name!r} needs stage {prev!r} fused first: "
                    f"run the earlier stages (with --fuse)"
                )
            cfg.model = str(cur.base_model)  # same architecture: check against the base
        fig = preflight_training(cfg)
        lines.append(f"stage {i + 1} {cur.stages[i].name}: {cur.stage_dir(i)}")
        lines.append(f"  model {cur.input_model(i)}\n  data {cfg.data}")
        lines.extend("  " + ln for ln in format_figures(fig))
        warn = small_model_warning(fig)
        if cur.eval is not None:
            lines.append(
                f"  then evaluate: {cur.eval.describe()}, without and with the adapter "
                f"-> {cur.stage_dir(i) / EVAL_FILE}"
            )
        if cur.needs_fuse(i):
            lines.append(f"  then fuse -> {cur.fused_dir(i)}")
            bits = quant_bits(cur.base_model) if i == 0 or cur.requantize else None
            job = FuseJob(
                i,
                cur.input_model(i),
                cur.adapter_dir(i),
                cur.fused_dir(i),
                cur.stage_dir(i) / "fuse.log",
                0,
                cur.requantize,
                bits,
            )
            lines.append(f"    merged model: {job.describe()}")
            if bits is not None and cur.requantize:
                warn = [
                    *warn,
                    f"lemlab: WARNING: stage {i + 1} {cur.stages[i].name}: the fused "
                    f"model is re-quantized to {bits}-bit; the rounding can exceed what the "
                    "stage learned (drop --requantize / requantize = true to keep it)",
                ]
        lines.extend(warn)
        warned = warned or bool(warn)
    return CurriculumPlan(lines, warned)
