"""A plain-text loss chart for terminals: no colour, no curses, works over bare SSH and in logs.

Train points are drawn with `·`, validation points with `o` (`@` where both fall in a cell).
Long runs are binned per column (the mean of the points in the column) so the chart costs
O(points) and its size is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[int, float]
TRAIN_MARK, VAL_MARK, BOTH_MARK = "·", "o", "@"


def _columns(points: Sequence[Point], lo_x: int, hi_x: int, width: int) -> dict[int, float]:
    sums: dict[int, list[float]] = {}
    span = max(hi_x - lo_x, 1)
    for x, y in points:
        col = min(width - 1, (x - lo_x) * (width - 1) // span)
        acc = sums.setdefault(col, [0.0, 0.0])
        acc[0] += y
        acc[1] += 1
    return {c: s / n for c, (s, n) in sums.items()}


def render_loss_chart(
    train: Sequence[Point],
    val: Sequence[Point] = (),
    *,
    width: int = 60,
    height: int = 10,
    total_iters: int | None = None,
) -> list[str]:
    """Lines of a loss chart. Empty input gives one explanatory line."""
    if not train and not val:
        return ["(no loss reported yet)"]
    width, height = max(width, 10), max(height, 3)
    xs = [x for x, _ in train] + [x for x, _ in val]
    ys = [y for _, y in train] + [y for _, y in val]
    lo_x = min(min(xs), 1)
    hi_x = max(max(xs), total_iters or 0)
    lo_y, hi_y = min(ys), max(ys)
    if hi_y - lo_y < 1e-9:
        lo_y, hi_y = lo_y - 0.5, hi_y + 0.5
    grid = [[" "] * width for _ in range(height)]
    for marks, mark in ((train, TRAIN_MARK), (val, VAL_MARK)):
        for col, y in _columns(marks, lo_x, hi_x, width).items():
            row = round((hi_y - y) * (height - 1) / (hi_y - lo_y))
            cell = grid[row][col]
            grid[row][col] = BOTH_MARK if cell not in (" ", mark) else mark
    label_w = max(len(f"{hi_y:.3f}"), len(f"{lo_y:.3f}"))
    lines = []
    for i, row in enumerate(grid):
        label = f"{hi_y:.3f}" if i == 0 else f"{lo_y:.3f}" if i == height - 1 else ""
        lines.append(f"{label:>{label_w}} │{''.join(row)}")
    lines.append(" " * label_w + " └" + "─" * width)
    left, right = str(lo_x), str(hi_x)
    lines.append(" " * (label_w + 2) + left + right.rjust(width - len(left)))
    lines.append(" " * (label_w + 2) + f"{TRAIN_MARK} train   {VAL_MARK} val   iterations →")
    return lines
