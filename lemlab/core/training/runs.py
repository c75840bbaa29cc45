"""The runs a user can pick from: training runs in the runs folder (where the TUI puts new
adapters) and those a session recorded, one row each with status, model, iterations and best
validation loss. Headless: the Training pane's picker shows these rows."""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.locks import ensure_free
from lemlab.core.training.events import (
    CONFIG_FILE,
    EVENTS_FILE,
    LOG_FILE,
    RunWatcher,
    TrainerCheck,
    resolve_run_source,
)


@dataclass(frozen=True)
class RunRow:
    folder: Path
    file: Path  # what attaching follows
    status: str  # waiting, running, done, error, stopped, interrupted
    model: str  # the model folder's name ("" when unknown)
    iteration: int
    total_iters: int | None
    best_val: float | None
    best_val_iteration: int | None
    modified: float  # the file's mtime: newest first
    where: str  # "session", "runs folder" or both

    @property
    def live(self) -> bool:
        return self.status in ("waiting", "running")

    @property
    def iterations(self) -> str:
        return (
            f"{self.iteration:,}/{self.total_iters:,}"
            if self.total_iters
            else f"{self.iteration:,}/?"
        )


def run_model(folder: Path) -> str:
    """The model a run trained, from lemlab's config or mlx-lm's adapter_config.json."""
    try:
        with open(folder / CONFIG_FILE, "rb") as fh:
            model = tomllib.load(fh).get("train", {}).get("model")
        if isinstance(model, str) and model:
            return model
    except (OSError, ValueError):
        pass
    try:
        model = json.loads((folder / "adapter_config.json").read_text()).get("model")
        return model if isinstance(model, str) else ""
    except (OSError, ValueError, AttributeError):
        return ""


def read_row(
    path: str | Path, where: str = "", liveness: TrainerCheck | None = None
) -> RunRow | None:
    """One run's row (with `liveness`, its trainer is checked, so a killed run reads
    "interrupted"); None when there is nothing to read there."""
    try:
        source = resolve_run_source(path)
    except FileNotFoundError:
        return None
    watcher = RunWatcher(source, liveness=liveness)
    try:
        watcher.poll()
    except OSError:
        return None
    watcher.check_trainer()
    st = watcher.state
    try:
        modified = source.file.stat().st_mtime
    except OSError:
        modified = 0.0
    model = run_model(source.folder)
    return RunRow(
        folder=source.folder,
        file=source.file,
        status=st.status,
        model=Path(model).name if model else "",
        iteration=st.iteration,
        total_iters=st.total_iters,
        best_val=st.best_val[1] if st.best_val else None,
        best_val_iteration=st.best_val[0] if st.best_val else None,
        modified=modified,
        where=where,
    )


def runs_in(folder: Path) -> list[Path]:
    """Adapter folders directly under `folder` holding an events file or a training log."""
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []
    return [p for p in children if (p / EVENTS_FILE).is_file() or (p / LOG_FILE).is_file()]


def list_runs(
    runs_folder: Path,
    session_records: Iterable[dict[str, Any]] = (),
    liveness: TrainerCheck | None = None,
) -> list[RunRow]:
    """Every run in the runs folder and in the session's records, once each, live runs first,
    then newest first."""
    where: dict[Path, set[str]] = {}
    order: list[Path] = []
    for rec in session_records:
        path = rec.get("file") or rec.get("path")
        if isinstance(path, str) and path:
            p = Path(path)
            where.setdefault(p, set()).add("session")
            order.append(p)
    for p in runs_in(runs_folder):
        where.setdefault(p, set()).add("runs folder")
        order.append(p)
    rows: dict[Path, RunRow] = {}
    for p in dict.fromkeys(order):
        row = read_row(p, " + ".join(sorted(where[p], reverse=True)), liveness)
        if row is None:
            continue
        if row.folder in rows:  # a session's file and the runs folder's folder: one run
            old = rows[row.folder]
            merged = " + ".join(
                sorted(set(old.where.split(" + ")) | set(row.where.split(" + ")), reverse=True)
            )
            rows[row.folder] = RunRow(**{**old.__dict__, "where": merged})
            continue
        rows[row.folder] = row
    return sorted(rows.values(), key=lambda r: (not r.live, -r.modified))


def previous_run(folder: Path) -> bool:
    return (folder / EVENTS_FILE).exists()


def archive_previous_run(folder: Path) -> Path | None:
    """Move an earlier run's events and log aside (kept, never deleted); returns the new events
    name. Checkpoints stay where they are: the new run overwrites those it saves again."""
    events = folder / EVENTS_FILE
    if not events.exists():
        return None
    ensure_free(events, f"training run {folder}")  # never move a live run's events aside
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(events.stat().st_mtime))
    target = folder / f"events.{stamp}.jsonl"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"events.{stamp}-{n}.jsonl"
    os.replace(events, target)
    log = folder / LOG_FILE
    if log.exists():
        os.replace(log, target.with_suffix(".log"))
    return target
