"""The checkpoint list: iteration, file, the validation loss nearest it, its mean score when
scored, and which checkpoint is best by validation loss and by score."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from lemlab.core.training.checkpoint_scores import CheckpointComparison, nearest_val
from lemlab.core.training.events import RunState

COLUMNS = ("iter", "val loss", "score", "best", "file")
# Single marks, explained in the table's title: the whole file name must fit beside them.
BEST_VAL, BEST_SCORE = "◆", "★"
TITLE = "Checkpoints   ◆ best val loss   ★ best score"


def checkpoint_rows(state: RunState, cmp: CheckpointComparison | None) -> list[tuple[str, ...]]:
    """One row per checkpoint event (plus scored checkpoints the events do not list)."""
    scores = {p.iteration: p.score for p in cmp.points} if cmp else {}
    paths = {it: path for it, path in state.checkpoints}
    for p in cmp.points if cmp else []:
        paths.setdefault(p.iteration, p.path or "")
    best_val = _best_val_iteration(state, cmp, paths)
    best_score = cmp.best_by_score.iteration if cmp and cmp.best_by_score else None
    rows: list[tuple[str, ...]] = []
    for it in sorted(paths):
        near = nearest_val(state, it)
        marks = [
            m for m, hit in ((BEST_VAL, it == best_val), (BEST_SCORE, it == best_score)) if hit
        ]
        rows.append(
            (
                f"{it:,}",
                f"{near[1]:.3f}" if near else "",
                f"{scores[it]:.2f}" if it in scores else "",
                "".join(marks),
                Path(paths[it]).name if paths[it] else "?",
            )
        )
    return rows


def _best_val_iteration(
    state: RunState, cmp: CheckpointComparison | None, paths: dict[int, str]
) -> int | None:
    if cmp and cmp.best_by_val_loss:
        return cmp.best_by_val_loss.iteration
    best = state.best_checkpoint
    return next((it for it, p in paths.items() if p == best), None) if best else None


class CheckpointTable(DataTable[Text]):
    DEFAULT_CSS = """
    CheckpointTable { height: 1fr; min-height: 4; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._rows: list[tuple[str, ...]] = []

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def show(self, state: RunState, cmp: CheckpointComparison | None) -> None:
        rows = checkpoint_rows(state, cmp)
        if rows == self._rows:
            return  # unchanged: keep the cursor where the user left it
        self._rows = rows
        self.clear()
        for row in rows:
            self.add_row(*(Text(cell) for cell in row), key=row[0])

    @property
    def rows_shown(self) -> list[tuple[str, ...]]:
        return list(self._rows)
