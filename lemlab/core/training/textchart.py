"""A plain-text loss chart for terminals: no colour, no curses, works over bare SSH and in logs.

Train points are drawn with `·`, validation points with `o` (`@` where both fall in a cell);
loss labels sit on the top, middle and bottom rows, iteration labels under the axis.
Long runs are binned per column (the mean of the points in the column) so the chart costs
O(points) and its size is fixed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from functools import reduce
from operator import add

Point = tuple[int, float]
TRAIN_MARK, VAL_MARK, BOTH_MARK = "·", "o", "@"
OTHER_TRAIN_MARK, OTHER_VAL_MARK = "+", "x"  # a second run drawn for comparison (`watch --vs`)


def _columns(points: Sequence[Point], lo_x: int, hi_x: int, width: int) -> dict[int, float]:
    """Mean loss per chart column, keyed by column."""
    xs = [x for x, _ in points]
    if all(type(x) is int for x in xs) and xs == sorted(xs):
        return _sorted_columns(xs, [y for _, y in points], lo_x, max(hi_x - lo_x, 1), width - 1)
    sums: dict[int, list[float]] = {}
    span = max(hi_x - lo_x, 1)
    for x, y in points:
        col = min(width - 1, (x - lo_x) * (width - 1) // span)
        acc = sums.setdefault(col, [0.0, 0.0])
        acc[0] += y
        acc[1] += 1
    return {c: s / n for c, (s, n) in sums.items()}


def _sorted_columns(
    xs: list[int], ys: list[float], lo_x: int, span: int, last: int
) -> dict[int, float]:
    """`_columns` for integer iterations in order (every run): each column is a slice found by
    bisection, summed left to right as the general loop does, so the means are bit-identical."""
    out: dict[int, float] = {}
    start, n = 0, len(xs)
    while start < n:
        col = min(last, (xs[start] - lo_x) * last // span)
        # The first x of a later column has (x - lo_x) * last >= (col + 1) * span.
        end = n if col == last else bisect_left(xs, lo_x - (-(col + 1) * span // last), start)
        out[col] = reduce(add, ys[start:end], 0.0) / (end - start)
        start = end
    return out


def render_loss_chart(
    train: Sequence[Point],
    val: Sequence[Point] = (),
    *,
    width: int = 60,
    height: int = 10,
    total_iters: int | None = None,
    other: tuple[Sequence[Point], Sequence[Point], str] | None = None,
) -> list[str]:
    """Lines of a loss chart. Empty input gives one explanatory line. NaN / inf losses (a run
    that diverged) cannot be placed on the axis: they are counted under the chart instead.
    `other`: (train, val, name) of a second run drawn on the same axes (`+` and `x`)."""
    if not train and not val:
        return ["(no loss reported yet)"]
    if other is not None:
        other = (
            [p for p in other[0] if math.isfinite(p[1])],
            [p for p in other[1] if math.isfinite(p[1])],
            other[2],
        )
    finite_train = [p for p in train if math.isfinite(p[1])]
    finite_val = [p for p in val if math.isfinite(p[1])]
    dropped = len(train) + len(val) - len(finite_train) - len(finite_val)
    if dropped:
        note = f"{dropped} loss value(s) NaN or infinite: the run diverged"
        if not finite_train and not finite_val:
            return [f"({note})"]
        lines = render_loss_chart(
            finite_train,
            finite_val,
            width=width,
            height=height,
            total_iters=total_iters,
            other=other,
        )
        return [*lines, f"  ({note}; not plotted)"]
    width, height = max(width, 10), max(height, 3)
    series = [(train, TRAIN_MARK), (val, VAL_MARK)]
    if other is not None:
        series += [(other[0], OTHER_TRAIN_MARK), (other[1], OTHER_VAL_MARK)]
    xs = [x for pts, _ in series for x, _ in pts]
    ys = [y for pts, _ in series for _, y in pts]
    lo_x = min(min(xs), 1)
    hi_x = max(max(xs), total_iters or 0)
    lo_y, hi_y = min(ys), max(ys)
    if hi_y - lo_y < 1e-9:
        lo_y, hi_y = lo_y - 0.5, hi_y + 0.5
    grid = [[" "] * width for _ in range(height)]
    for marks, mark in series:
        if not marks:
            continue
        for col, y in _columns(marks, lo_x, hi_x, width).items():
            row = round((hi_y - y) * (height - 1) / (hi_y - lo_y))
            cell = grid[row][col]
            grid[row][col] = BOTH_MARK if cell not in (" ", mark) else mark
    return _frame(grid, lo_x, hi_x, lo_y, hi_y, other[2] if other is not None else None)


def _frame(
    grid: list[list[str]],
    lo_x: int,
    hi_x: int,
    lo_y: float,
    hi_y: float,
    other_name: str | None = None,
) -> list[str]:
    """Axes around the grid: loss labels at the top, middle and bottom rows, iterations at the
    left, middle and right columns, and a legend."""
    height, width = len(grid), len(grid[0])
    mid_row = (height - 1) // 2 if height >= 5 else -1
    labels = {0: hi_y, height - 1: lo_y}
    if mid_row > 0:
        labels[mid_row] = hi_y - (hi_y - lo_y) * mid_row / (height - 1)
    label_w = max(len(f"{v:.3f}") for v in labels.values())
    lines = []
    for i, row in enumerate(grid):
        label = f"{labels[i]:.3f}" if i in labels else ""
        lines.append(f"{label:>{label_w}} │{''.join(row)}")
    lines.append(" " * label_w + " └" + "─" * width)
    axis = [" "] * width
    mid_col = (width - 1) // 2
    # Ends first, so a crowded axis drops the middle label rather than the run's length.
    marks = [
        (0, str(lo_x)),
        (width, str(hi_x)),
        (mid_col, str(lo_x + (hi_x - lo_x) * mid_col // max(width - 1, 1))),
    ]
    for col, text in marks:
        start = col - len(text) if col == width else max(col - len(text) // 2, 0)
        if all(c == " " for c in axis[max(start - 1, 0) : start + len(text) + 1]):
            axis[start : start + len(text)] = text
    lines.append(" " * (label_w + 2) + "".join(axis).rstrip())
    legend = f"{TRAIN_MARK} train   {VAL_MARK} val   {BOTH_MARK} both   x: iteration   y: loss"
    lines.append(" " * (label_w + 2) + legend)
    if (
        other_name is not None
    ):  # a line of its own: a long run name must not push the first off screen
        lines.append(
            " " * (label_w + 2)
            + f"{OTHER_TRAIN_MARK} train   {OTHER_VAL_MARK} val   of {other_name}"
        )
    return lines
