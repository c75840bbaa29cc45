"""Score vs checkpoint: run a battery on each saved checkpoint of an adapter through the app's
engine (the A/B runner does the work: one variant per checkpoint, loaded as base + checkpoint
file) and yield the mean score of each checkpoint as soon as all its probes are scored.

No Textual and no mlx here: the pane iterates `events()` in a worker thread, and the engine's
own thread does the MLX work.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.ab import runner as ev
from lemlab.core.ab.conditions import Condition, ConditionPlan, Variant
from lemlab.core.battery.probes import resolve_battery
from lemlab.core.engine_api import Engine, Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import read_adapter_config, resolve_base_reference
from lemlab.core.scoring import get_scorer as core_get_scorer
from lemlab.core.training.checkpoint_scores import checkpoint_files
from lemlab.core.training.events import CONFIG_FILE, RunState

DEFAULT_BATTERY = "ethics20"
DEFAULT_MAX_TOKENS = 48
DEFAULT_LIMIT = 6


@dataclass(frozen=True)
class ScoreRequest:
    battery: str = DEFAULT_BATTERY  # shipped name or file path
    max_tokens: int = DEFAULT_MAX_TOKENS
    limit: int | None = DEFAULT_LIMIT  # first N probes; None = all
    scorer: str = "v2"


@dataclass(frozen=True)
class CheckpointScored:
    iteration: int
    mean: float
    probes: int


@dataclass(frozen=True)
class ScoringProgress:
    iteration: int  # checkpoint being scored
    done_units: int
    total_units: int


@dataclass(frozen=True)
class ScoringDone:
    scores: list[tuple[int, float]]
    cancelled: bool


ScoringEvent = CheckpointScored | ScoringProgress | ScoringDone


def checkpoints_to_score(folder: Path, state: RunState) -> list[tuple[int, str]]:
    """Checkpoint files on disk; a finished run's final adapters.safetensors stands for its last
    iteration when no checkpoint was saved there (as core.checkpoint_scores aligns it)."""
    files = checkpoint_files(folder)
    final = folder / "adapters.safetensors"
    if state.total_iters and state.status == "done" and final.is_file():
        files.setdefault(state.total_iters, str(final))
    return sorted(files.items())


def run_base_model(folder: Path, fallback: str | None) -> str | None:
    """The model the run trained: lemlab-train.toml, else adapter_config.json, else fallback."""
    try:
        with open(folder / CONFIG_FILE, "rb") as fh:
            model = tomllib.load(fh).get("train", {}).get("model")
        if isinstance(model, str) and Path(model, "config.json").is_file():
            return model
    except (OSError, tomllib.TOMLDecodeError):
        pass
    try:
        cfg = read_adapter_config(folder)
    except LemlabError:
        return fallback
    found = resolve_base_reference(folder, str(cfg.get("model") or ""), cfg)
    return str(found) if found else fallback


def variant_name(iteration: int) -> str:
    return f"ckpt@{iteration}"


def checkpoint_plan(model: str, checkpoints: Sequence[tuple[int, str]]) -> ConditionPlan:
    """One variant (and one no-kernel condition) per checkpoint, in iteration order."""
    variants = tuple(Variant(variant_name(it), path) for it, path in checkpoints)
    conditions = tuple(Condition(v.name, v.name, None, v.adapter) for v in variants)
    return ConditionPlan(model, variants, conditions)


def get_scorer(scorer_id: str) -> Any:
    return core_get_scorer(scorer_id)


@dataclass
class CheckpointScoring:
    engine: Engine
    model: str
    checkpoints: list[tuple[int, str]]
    probes: Sequence[Any]
    scorer: Any
    max_tokens: int
    _runner: ev.BatteryRunner | None = field(default=None, init=False)
    _cancelled: bool = field(default=False, init=False)

    def cancel(self) -> None:
        self._cancelled = True
        if self._runner is not None:
            self._runner.cancel()

    def events(self) -> Iterator[ScoringEvent]:
        plan = checkpoint_plan(self.model, self.checkpoints)
        by_name = {variant_name(it): it for it, _ in self.checkpoints}
        self._runner = ev.BatteryRunner(
            self.engine, self.probes, plan, self.scorer, Sampler(max_tokens=self.max_tokens)
        )
        if self._cancelled:
            self._runner.cancel()
        sums: dict[int, list[float]] = {}
        scores: list[tuple[int, float]] = []
        for event in self._runner.events():
            if isinstance(event, ev.ConditionDone):
                it = by_name[event.condition]
                sums.setdefault(it, []).append(float(event.result["lek_score"]))
                p = event.progress
                yield ScoringProgress(it, p.done_units, p.total_units)
                if len(sums[it]) == len(self.probes):
                    mean = sum(sums[it]) / len(sums[it])
                    scores.append((it, mean))
                    yield CheckpointScored(it, mean, len(sums[it]))
            elif isinstance(event, ev.RunDone):
                yield ScoringDone(scores, event.cancelled)


def prepare_scoring(
    engine: Engine, folder: Path, state: RunState, request: ScoreRequest, fallback_model: str | None
) -> CheckpointScoring:
    """Every check that can fail on user input, before any model is loaded (LemlabError)."""
    if request.max_tokens < 1:
        raise LemlabError("max tokens must be at least 1")
    if request.limit is not None and request.limit < 1:
        raise LemlabError("probe limit must be at least 1 (or empty for all)")
    checkpoints = checkpoints_to_score(folder, state)
    if not checkpoints:
        raise LemlabError(f"{folder} has no saved checkpoints to score yet")
    model = run_base_model(folder, fallback_model)
    if not model:
        raise LemlabError("cannot tell which base model this run trained: load it first")
    battery = resolve_battery(request.battery)
    probes = list(battery.probes[: request.limit] if request.limit else battery.probes)
    if not probes:
        raise LemlabError(f"battery {battery.name} has no probes")
    return CheckpointScoring(
        engine, model, checkpoints, probes, get_scorer(request.scorer), request.max_tokens
    )
