"""Continuing a stopped (or killed) run from its last saved weights, and saying exactly what that
restores. mlx-lm's `--resume-adapter-file` loads adapter weights only: no optimizer state, no
iteration count, no position in the data, so "continue" is a new run that starts from those
weights for the iterations that were left."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.training.config import read_config_toml
from lemlab.core.training.events import CONFIG_FILE, EVENTS_FILE, RunState, load_run

CHECKPOINT_RE = re.compile(r"^(\d{7})_adapters\.safetensors$")


@dataclass(frozen=True)
class ContinuePoint:
    path: str  # the weights file to start from
    iteration: int  # updates those weights hold


@dataclass(frozen=True)
class ContinuePlan:
    values: dict[str, Any]  # training settings for the new run (the old run's, adjusted)
    point: ContinuePoint
    note_lines: list[str]


def continue_point(folder: Path, state: RunState) -> ContinuePoint | None:
    """The latest weights on disk with a known iteration: the newest checkpoint file, or the
    adapters a stop saved when its event says after how many updates (a later one wins)."""
    best: ContinuePoint | None = None
    for f in folder.glob("*_adapters.safetensors"):
        m = CHECKPOINT_RE.match(f.name)
        if m and (best is None or int(m[1]) > best.iteration):
            best = ContinuePoint(str(f), int(m[1]))
    stopped = _stopped_at(folder)
    if (
        state.status == "stopped"
        and stopped is not None
        and (folder / "adapters.safetensors").is_file()
    ):
        if best is None or stopped > best.iteration:
            best = ContinuePoint(str(folder / "adapters.safetensors"), stopped)
    return best


def _stopped_at(folder: Path) -> int | None:
    import json

    try:
        last = (folder / EVENTS_FILE).read_text().rstrip("\n").rsplit("\n", 1)[-1]
        obj = json.loads(last)
    except (OSError, ValueError):
        return None
    it = obj.get("iteration") if isinstance(obj, dict) and obj.get("event") == "stopped" else None
    return it if type(it) is int and it > 0 else None


def note_lines(point: ContinuePoint, iters_left: int, total: int) -> list[str]:
    """What continuing restores and what it does not, in the user's terms."""
    return [
        f"continuing from {Path(point.path).name}: the adapter weights after iteration {point.iteration:,}"
        f" of {total:,}, for the {iters_left:,} iterations left",
        "  restored:     the LoRA adapter weights (and the run's settings, unless you change them)",
        "  not restored: the optimizer state (Adam's moments start from zero), the iteration count "
        "(the new run counts from 1 and its checkpoints are numbered from 1), the position in the "
        "data (batches are drawn again from the start), the loss history (the new run has its own)",
    ]


def plan_continue(run: str | Path, adapter_path: str | None = None) -> ContinuePlan:
    """Settings for a run that continues `run` (an adapter folder lemlab trained) from its last
    saved weights. LemlabError (one line) when there is nothing to continue."""
    folder = Path(run).expanduser().resolve()
    if not (folder / CONFIG_FILE).is_file():
        raise LemlabError(
            f"{folder} holds no {CONFIG_FILE}: only runs lemlab trained can be continued"
        )
    values = read_config_toml(folder / CONFIG_FILE)
    state = load_run(folder) if (folder / EVENTS_FILE).is_file() else RunState()
    if not state.finished and state.status != "waiting":
        raise LemlabError(
            f"the run in {folder} is still going: stop it first (lemlab train --stop {folder})"
        )
    point = continue_point(folder, state)
    if point is None:
        raise LemlabError(f"{folder} has no saved checkpoint to continue from")
    total = int(values.get("iters") or state.total_iters or 0)
    left = total - point.iteration
    if left < 1:
        raise LemlabError(
            f"{Path(point.path).name} already holds all {total:,} iterations: nothing to continue"
        )
    out = str(Path(adapter_path).expanduser().resolve()) if adapter_path else f"{folder}-continued"
    values.update(resume_adapter_file=point.path, iters=left, adapter_path=out)
    return ContinuePlan(values, point, note_lines(point, left, total))
