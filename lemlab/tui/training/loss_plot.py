"""The loss plot: train loss as a line and validation loss as points (it is measured every N
steps: a line between measurements would read as measured plateaus), mean score per checkpoint
(right axis), the best-by-val-loss and best-by-score checkpoints as vertical lines, optionally a
smoothed train loss, and optionally a second run drawn beside this one. Integer iteration ticks,
zoomable to the last N iterations. Colours come from the app theme.

The legend is not plotext's (drawn over the top-left of the data, which at 80x24 covers it):
`legend()` gives one entry per thing drawn, and the pane shows them on a line of their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.color import Color
from textual_plotext import PlotextPlot

Point = tuple[int, float]
SMOOTHING = 0.8  # EMA weight of the smoothed train loss (as TensorBoard's slider)
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


def smooth(points: Sequence[Point], weight: float = SMOOTHING) -> list[Point]:
    """Exponential moving average of the losses, bias-corrected so the start is not pulled
    towards zero."""
    out: list[Point] = []
    acc = 0.0
    for i, (x, y) in enumerate(points):
        acc = weight * acc + (1 - weight) * y
        out.append((x, acc / (1 - weight ** (i + 1))))
    return out


def integer_ticks(lo: int, hi: int, most: int) -> list[int]:
    """At most `most` whole-number ticks from lo to hi, on a 1-2-5 step (never 12.5)."""
    span = max(hi - lo, 1)
    base = 1
    while True:
        step = next((base * m for m in (1, 2, 5) if span // (base * m) + 1 <= max(most, 2)), None)
        if step is not None:
            break
        base *= 10
    first = -(-lo // step) * step
    return list(range(first, hi + 1, step))


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
        self.smoothing = False
        self.other_train: list[Point] = []  # the overlaid run
        self.other_val: list[Point] = []
        self.other_name = ""
        self.run_name = "this run"
        self._legend: list[tuple[str, Any, str]] = []  # (mark, rgb, label)

    @property
    def last_iteration(self) -> int:
        return max([p[0] for p in (self.train[-1:] + self.val[-1:] + self.scores[-1:])], default=0)

    @property
    def window(self) -> int | None:
        return zoom_window(self.last_iteration, self.zoom)

    def set_zoom(self, level: int) -> None:
        self.zoom = max(0, min(MAX_ZOOM, level))
        self.replot()

    def show_run(
        self,
        train: Sequence[Point],
        val: Sequence[Point],
        total_iters: int | None,
        best_val_iter: int | None,
    ) -> None:
        self.train, self.val = list(train), list(val)
        self.total_iters, self.best_val_iter = total_iters, best_val_iter
        self.replot()

    def show_overlay(self, train: Sequence[Point], val: Sequence[Point], name: str) -> None:
        self.other_train, self.other_val, self.other_name = list(train), list(val), name

    def set_smoothing(self, on: bool) -> None:
        self.smoothing = on
        self.replot()

    def legend(self) -> list[tuple[str, str, str]]:
        """(mark, rich colour, label) for every line and point set on the chart."""
        return [(mark, "rgb({},{},{})".format(*rgb), label) for mark, rgb, label in self._legend]

    def show_scores(self, scores: Sequence[Point], best_score_iter: int | None) -> None:
        self.scores, self.best_score_iter = list(scores), best_score_iter
        self.replot()

    def _colour(self, name: str) -> tuple[int, int, int]:
        value = self.app.theme_variables.get(name) or self.app.theme_variables.get(
            "foreground", "white"
        )
        return Color.parse(value).rgb

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        window = self.window
        lo = None if window is None else self.last_iteration - window + 1
        limit = max(40, 2 * (self.size.width or 80))
        train, val = thin(in_window(self.train, lo), limit), in_window(self.val, lo)
        other_train, other_val = (
            thin(in_window(self.other_train, lo), limit),
            in_window(self.other_val, lo),
        )
        scores = in_window(self.scores, lo)
        legend: list[tuple[str, Any, str]] = []
        self._legend = legend
        if not (train or val or other_train or other_val):
            plt.title("no loss reported yet")
            self.refresh()
            return
        me = self.run_name
        if other_train or other_val:
            colour = self._colour("secondary")
            if other_train:
                plt.plot(
                    [p[0] for p in other_train],
                    [p[1] for p in other_train],
                    marker="braille",
                    color=colour,
                )
                legend.append(("─", colour, f"train ({self.other_name})"))
            if other_val:
                plt.scatter(
                    [p[0] for p in other_val], [p[1] for p in other_val], marker="○", color=colour
                )
                legend.append(("○", colour, f"val ({self.other_name})"))
        if train:
            colour = self._colour("primary")
            if self.smoothing and len(train) > 2:
                raw = (
                    self._colour("foreground-muted")
                    if "foreground-muted" in self.app.theme_variables
                    else self._colour("panel")
                )
                plt.scatter(
                    [p[0] for p in train], [p[1] for p in train], marker="braille", color=raw
                )
                legend.append(("⠂", raw, f"train ({me}, raw)"))
                sm = smooth(train)
                plt.plot([p[0] for p in sm], [p[1] for p in sm], marker="braille", color=colour)
                legend.append(("─", colour, f"train ({me}, smoothed {SMOOTHING:g})"))
            else:
                plt.plot(
                    [p[0] for p in train], [p[1] for p in train], marker="braille", color=colour
                )
                legend.append(("─", colour, f"train ({me})"))
        if val:
            colour = self._colour("accent")
            plt.scatter([p[0] for p in val], [p[1] for p in val], marker="●", color=colour)
            legend.append(("●", colour, f"val ({me})"))
        if scores:
            colour = self._colour("success")
            plt.scatter(
                [p[0] for p in scores],
                [p[1] for p in scores],
                marker="★",
                yside="right",
                color=colour,
            )
            # textual-plotext's stub names ylabel's side `xside`; plotext's ylabel takes yside.
            plt.ylabel("mean score", yside="right")  # type: ignore[call-arg]
            legend.append(("★", colour, "mean score (right axis)"))
        self._mark_best(lo, legend)
        self._ticks(lo)
        span = "all iterations" if window is None else f"last {window:,} iterations (+/- zoom)"
        plt.title(f"loss by iteration: {span}")  # the axis's name in the title: one row less
        self.refresh()

    def _ticks(self, lo: int | None) -> None:
        xs = [
            p[0]
            for pts in (self.train, self.val, self.other_train, self.other_val, self.scores)
            for p in pts
            if lo is None or p[0] >= lo
        ]
        if not xs:
            return
        first, last = min(xs), max(xs)
        most = max(2, (self.size.width or 80) // 10)
        ticks = integer_ticks(first, last, most)
        positions: list[float] = list(ticks)
        self.plt.xticks(positions, [f"{t:,}" for t in ticks])

    def _mark_best(self, lo: int | None, legend: list[tuple[str, Any, str]]) -> None:
        marks = (
            (self.best_val_iter, "accent", "best val loss"),
            (self.best_score_iter, "success", "best score"),
        )
        for it, colour_name, what in marks:
            if it is not None and (lo is None or it >= lo):
                colour = self._colour(colour_name)
                self.plt.vertical_line(it, color=colour)
                legend.append(("│", colour, f"{what} (iteration {it:,})"))
