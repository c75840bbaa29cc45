"""Score vs checkpoint: line up per-checkpoint eval scores with the loss curve, and see whether
the checkpoint with the best score is the one with the best validation loss (often it is not:
loss keeps falling while the behaviour the probes measure has already degraded).

The runner that produces scores (the A/B runner, one run per checkpoint) calls:

    cmp = compare_checkpoints(adapter_dir, [(100, 21.3), (200, 22.9), (300, 19.4)])
    cmp.points            # CheckpointPoint per scored checkpoint, in iteration order
    cmp.best_by_score     # highest mean score (ties: the earlier checkpoint)
    cmp.best_by_val_loss  # lowest aligned validation loss among the scored checkpoints
    cmp.agree             # same checkpoint?

Alignment: checkpoint k holds the weights after update k; a validation reported at (CLI)
iteration v measured the weights after update v - 1. The aligned validation is the one whose
measured weights are nearest to k (|v - 1 - k|, ties to the earlier), and `val_gap` says how far.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lemlab.core.training.events import RunState, load_run

_CKPT_RE = re.compile(r"^(\d{7})_adapters\.safetensors$")


@dataclass(frozen=True)
class CheckpointPoint:
    iteration: int
    score: float
    path: str | None  # the checkpoint file, when it exists
    val_loss: float | None
    val_iteration: int | None  # CLI iteration of the aligned validation
    val_gap: int | None  # updates between the checkpoint and the weights that validation saw


@dataclass(frozen=True)
class CheckpointComparison:
    points: list[CheckpointPoint]
    best_by_score: CheckpointPoint | None
    best_by_val_loss: CheckpointPoint | None
    run_best_val: tuple[int, float] | None  # the run's lowest validation overall

    @property
    def agree(self) -> bool:
        a, b = self.best_by_score, self.best_by_val_loss
        return a is not None and b is not None and a.iteration == b.iteration


def checkpoint_files(adapter_dir: str | Path) -> dict[int, str]:
    """Checkpoints on disk by iteration (NNNNNNN_adapters.safetensors)."""
    d = Path(adapter_dir)
    out = {}
    for p in d.glob("*_adapters.safetensors"):
        m = _CKPT_RE.match(p.name)
        if m:
            out[int(m[1])] = str(p)
    return out


def nearest_val(state: RunState, iteration: int) -> tuple[int, float, int] | None:
    """(val iteration, val loss, gap) of the validation nearest checkpoint `iteration`."""
    best = None
    for v, loss in state.val_points:
        gap = abs(v - 1 - iteration)
        if best is None or gap < best[2] or (gap == best[2] and v < best[0]):
            best = (v, loss, gap)
    return best


def align_scores(
    state: RunState,
    scores: Iterable[tuple[int, float]],
    files: dict[int, str] | None = None,
    max_gap: int | None = None,
) -> list[CheckpointPoint]:
    """One point per (checkpoint iteration, mean score), sorted by iteration. A validation
    further than `max_gap` updates away is left out (val_loss None)."""
    files = files or {}
    points = []
    for it, score in sorted(scores):
        near = nearest_val(state, it)
        if near is not None and max_gap is not None and near[2] > max_gap:
            near = None
        v, loss, gap = near if near else (None, None, None)
        points.append(CheckpointPoint(it, float(score), files.get(it), loss, v, gap))
    return points


def compare(
    points: list[CheckpointPoint], run_best_val: tuple[int, float] | None = None
) -> CheckpointComparison:
    by_score = min(points, key=lambda p: (-p.score, p.iteration), default=None)
    with_val = [p for p in points if p.val_loss is not None]
    by_val = min(with_val, key=lambda p: (p.val_loss, p.iteration), default=None)
    return CheckpointComparison(points, by_score, by_val, run_best_val)


def compare_checkpoints(
    adapter_dir: str | Path, scores: Iterable[tuple[int, float]], max_gap: int | None = None
) -> CheckpointComparison:
    """Read the adapter folder's run (events.jsonl or train.log) and checkpoints, align, pick."""
    state = load_run(adapter_dir)
    files = checkpoint_files(adapter_dir)
    final = Path(adapter_dir) / "adapters.safetensors"
    if state.total_iters and state.status == "done" and final.exists():
        files.setdefault(state.total_iters, str(final))
    return compare(align_scores(state, scores, files, max_gap), state.best_val)
