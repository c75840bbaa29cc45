"""The loss plot: train and validation loss (left axis), mean score per checkpoint (right axis),
with the best-by-val-loss and best-by-score checkpoints marked, zoomable to the last N
iterations. Colours come from the app theme."""

from __future__ import annotations

from collections.abc import Sequence

from textual.color import Color
from textual_plotext import PlotextPlot

Point = tuple[int, float]
MAX_ZOOM = 8  # level n shows the last 1/2**n of the run (at least MIN_WINDOW iterations)
MIN_WINDOW = 10


def zoom_window(last_iteration: int, level: int) -> int | None:
    """Iterations shown at a zoom level: None = the whole run."""
    if level <= 0 or last_iteration <= 0:
        return None
    return max(MIN_WINDOW, -(-last_iteration // 2**level))


def in_window(points: Sequence[Point], lo: int | None) -> list[Point]:
    return list(points) if lo is None else [p for p in points if p[0] >= lo]


def thin(points: Sequence[Point], limit: int) -> list[Point]:
    """At most ~limit points, the last always kept: plotting costs grow with points, not width."""
    if len(points) <= limit or limit < 2:
        return list(points)
    step = -(-len(points) // limit)
    out = list(points[::step])
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


class LossPlot(PlotextPlot):
    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 8; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.zoom = 0
        self.train: list[Point] = []
        self.val: list[Point] = []
        self.scores: list[Point] = []
        self.best_val_iter: int | None = None
        self.best_score_iter: int | None = None
        self.total_iters: int | None = None

    @property
    def last_iteration(self) -> int:
        return max([p[0] for p in (self.train[-1:] + self.val[-1:] + self.scores[-1:])], default=0)

    @property
    def window(self) -> int | None:
        return zoom_window(self.last_iteration, self.zoom)

    def set_zoom(self, level: int) -> None:
        self.zoom = max(0, min(MAX_ZOOM, level))
        self.replot()

    def show_run(self, train: Sequence[Point], val: Sequence[Point], total_iters: int | None,
                 best_val_iter: int | None) -> None:  # fmt: skip
        self.train, self.val = list(train), list(val)
        self.total_iters, self.best_val_iter = total_iters, best_val_iter
        self.replot()

    def show_scores(self, scores: Sequence[Point], best_score_iter: int | None) -> None:
        self.scores, self.best_score_iter = list(scores), best_score_iter
        self.replot()

    def _colour(self, name: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(name) or self.app.theme_variables.get("foreground", "white")
        return Color.parse(value).rgb

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        window = self.window
        lo = None if window is None else self.last_iteration - window + 1
        limit = max(40, 2 * (self.size.width or 80))
        train, val = thin(in_window(self.train, lo), limit), in_window(self.val, lo)
        scores = in_window(self.scores, lo)
        if not (train or val):
            plt.title("no loss reported yet")
            self.refresh()
            return
        if train:
            plt.plot([p[0] for p in train], [p[1] for p in train], label="train",
                     marker="braille", color=self._colour("primary"))  # fmt: skip
        if val:
            plt.plot([p[0] for p in val], [p[1] for p in val], label="val",
                     marker="dot", color=self._colour("accent"))  # fmt: skip
        if scores:
            plt.scatter([p[0] for p in scores], [p[1] for p in scores], label="score (right)",
                        marker="●", yside="right", color=self._colour("success"))  # fmt: skip
            plt.ylabel("mean score", yside="right")
        self._mark_best(lo)
        span = "all iterations" if window is None else f"last {window:,} iterations (+/- zoom)"
        plt.title(f"loss: {span}")
        plt.xlabel("iteration")
        self.refresh()

    def _mark_best(self, lo: int | None) -> None:
        marks = ((self.best_val_iter, "accent"), (self.best_score_iter, "warning"))
        for it, colour in marks:
            if it is not None and (lo is None or it >= lo):
                self.plt.vertical_line(it, color=self._colour(colour))
