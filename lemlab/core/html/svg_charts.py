"""Server-side SVG charts for the HTML report: delta bars, a heat map, score strips and line
charts. Plain strings, no JavaScript and no library: the report must be one self-contained file
that opens offline, prints, and shows the same picture in any browser. Every label goes through
html.escape (ids and condition names come from files).

Each chart is an <svg role="img"> with a <title>; the page puts a table or sentence beside it
as the text alternative."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

FONT = 12  # px; the page's CSS sets the family
POS, NEG, NEUTRAL = "#1a7f37", "#cf222e", "#8c959f"
SERIES = ("#0969da", "#bf3989", "#9a6700", "#1a7f37", "#8250df", "#cf222e")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "?"


def _svg(width: float, height: float, title: str, body: list[str], cls: str) -> str:
    return (
        f'<svg class="chart {cls}" role="img" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{esc(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}>{esc(text)}</text>'


def delta_bars(rows: Sequence[tuple[str, float]], title: str, margin: float = 0.5) -> str:
    """Horizontal bars, one per probe, sorted by delta (largest gain on top). Bars within
    +-margin (the research's "unchanged") are grey."""
    rows = sorted(rows, key=lambda r: (-r[1], r[0]))
    label_w = min(260, 24 + 7 * max((len(r[0]) for r in rows), default=4))
    bar_h, gap, top = 16, 4, 8
    plot_w = 360
    width = label_w + plot_w + 60
    height = top * 2 + len(rows) * (bar_h + gap) + 16
    span = max((abs(d) for _, d in rows), default=1.0) or 1.0
    zero = label_w + plot_w / 2
    scale = (plot_w / 2) / span
    body = [f'<line x1="{zero}" y1="{top - 4}" x2="{zero}" y2="{height - 18}" class="axis"/>']
    for i, (pid, d) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = abs(d) * scale
        x = zero if d >= 0 else zero - w
        color = NEUTRAL if abs(d) <= margin else (POS if d > 0 else NEG)
        body.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" '
            f'fill="{color}"><title>{esc(pid)}: {d:+.2f}</title></rect>'
        )
        body.append(_text(label_w - 6, y + bar_h - 4, pid[:36], "end"))
        # Values sit on the far side of zero from their bar, so they never run into a label.
        vx = zero - 4 if d >= 0 else zero + 4
        body.append(_text(vx, y + bar_h - 4, f"{d:+.2f}", "end" if d >= 0 else "start", "value"))
    body.append(_text(zero, height - 4, "0", "middle", "tick"))
    body.append(_text(zero - plot_w / 2, height - 4, f"-{_num(span)}", "middle", "tick"))
    body.append(_text(zero + plot_w / 2, height - 4, f"+{_num(span)}", "middle", "tick"))
    return _svg(width, height, title, body, "delta-bars")


def _heat_color(value: float, lo: float, hi: float) -> str:
    t = 0.5 if hi <= lo else (value - lo) / (hi - lo)
    # light to dark blue: readable black text up to about 60%, white beyond
    r, g, b = (int(round(a + (z - a) * t)) for a, z in ((240, 9), (246, 105), (252, 218)))
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_map(
    rows: Sequence[str], cols: Sequence[str], values: dict[tuple[str, str], float], title: str
) -> str:
    """Category by condition, each cell its mean score (shown in the cell, and as colour)."""
    cell_w, cell_h = 96, 26
    label_w = min(220, 24 + 7 * max((len(r) for r in rows), default=4))
    head_h = 30
    width = label_w + cell_w * len(cols) + 8
    height = head_h + cell_h * len(rows) + 8
    present = [v for v in values.values() if math.isfinite(v)]
    lo, hi = (min(present), max(present)) if present else (0.0, 1.0)
    body = []
    for j, col in enumerate(cols):
        body.append(_text(label_w + j * cell_w + cell_w / 2, head_h - 10, col[:14], "middle"))
    for i, row in enumerate(rows):
        y = head_h + i * cell_h
        body.append(_text(label_w - 6, y + cell_h / 2 + 4, row[:30], "end"))
        for j, col in enumerate(cols):
            x = label_w + j * cell_w
            v = values.get((row, col))
            if v is None:
                body.append(
                    f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                    f'class="empty"/>'
                )
                continue
            fill = _heat_color(v, lo, hi)
            ink = "#ffffff" if (hi > lo and (v - lo) / (hi - lo) > 0.6) else "#1f2328"
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{fill}"><title>{esc(row)} / {esc(col)}: {v:.2f}</title></rect>'
            )
            body.append(
                f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 4:.1f}" '
                f'text-anchor="middle" fill="{ink}">{v:.2f}</text>'
            )
    return _svg(width, height, title, body, "heat-map")


def score_strips(series: Sequence[tuple[str, Sequence[float]]], title: str) -> str:
    """One row per condition: every probe's score as a dot, the median as a bar."""
    label_w, plot_w, row_h, top = 140, 420, 34, 10
    width = label_w + plot_w + 20
    height = top + row_h * len(series) + 24
    every = [v for _, vals in series for v in vals if math.isfinite(v)]
    lo, hi = (min(every), max(every)) if every else (0.0, 1.0)
    if hi - lo < 1:
        lo, hi = lo - 0.5, hi + 0.5

    def x_of(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    body = []
    for i, (name, vals) in enumerate(series):
        y = top + i * row_h + row_h / 2
        color = SERIES[i % len(SERIES)]
        body.append(_text(label_w - 8, y + 4, name[:18], "end"))
        body.append(
            f'<line x1="{label_w}" y1="{y}" x2="{label_w + plot_w}" y2="{y}" class="grid"/>'
        )
        for v in vals:
            if math.isfinite(v):
                body.append(
                    f'<circle cx="{x_of(v):.1f}" cy="{y:.1f}" r="4" fill="{color}" '
                    f'fill-opacity="0.6"><title>{esc(name)}: {v:.2f}</title></circle>'
                )
        finite = sorted(v for v in vals if math.isfinite(v))
        if finite:
            med = _median(finite)
            body.append(
                f'<line x1="{x_of(med):.1f}" y1="{y - 11}" x2="{x_of(med):.1f}" '
                f'y2="{y + 11}" stroke="{color}" stroke-width="3"/>'
            )
    base_y = top + row_h * len(series) + 14
    for v in (lo, (lo + hi) / 2, hi):
        body.append(_text(x_of(v), base_y, _num(v), "middle", "tick"))
    return _svg(width, height, title, body, "score-strips")


def _median(sorted_values: Sequence[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def median(values: Sequence[float]) -> float | None:
    finite = sorted(v for v in values if math.isfinite(v))
    return _median(finite) if finite else None


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False
    markers_only: bool = False  # validation points: measured only where drawn


def line_chart(lines: Sequence[Line], title: str, y_label: str, x_label: str = "iteration") -> str:
    """Lines over iterations with integer x ticks and a legend below the plot (never over the
    data). Non-finite values (a diverged run) are skipped and named in the legend."""
    left, plot_w, plot_h, top = 64, 520, 220, 26
    legend_h = 18 * len(lines) + 8
    width = left + plot_w + 16
    height = top + plot_h + 34 + legend_h
    pts = [(x, y) for ln in lines for x, y in ln.points if math.isfinite(y)]
    if not pts:
        pts = [(0.0, 0.0), (1.0, 1.0)]
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 <= x0:
        x1 = x0 + 1
    if y1 - y0 < 1e-12 * max(1.0, abs(y0)) or y1 == y0:
        half = abs(y0) * 0.5 or 0.5  # a flat series (a constant learning rate) mid-height
        y0, y1 = y0 - half, y1 + half
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>']
    for k in range(5):
        yv = y0 + (y1 - y0) * k / 4
        body.append(
            f'<line x1="{left}" y1="{sy(yv):.1f}" x2="{left + plot_w}" y2="{sy(yv):.1f}" class="grid"/>'
        )
        body.append(_text(left - 6, sy(yv) + 4, _tick(yv), "end", "tick"))
    for xv in _int_ticks(x0, x1):
        body.append(_text(sx(xv), top + plot_h + 16, str(xv), "middle", "tick"))
    body.append(_text(left + plot_w / 2, top + plot_h + 30, x_label, "middle", "axis-label"))
    body.append(_text(left, top - 10, y_label, "start", "axis-label"))  # above, never on ticks
    for i, ln in enumerate(lines):
        color = SERIES[i % len(SERIES)]
        finite = [(x, y) for x, y in ln.points if math.isfinite(y)]
        if not ln.markers_only and len(finite) > 1:
            d = " ".join(
                f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}"
                for j, (x, y) in enumerate(finite)
            )
            dash = ' stroke-dasharray="5 4"' if ln.dashed else ""
            body.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        if ln.markers_only or len(finite) == 1:
            for x, y in finite:
                body.append(
                    f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{color}">'
                    f"<title>{esc(ln.label)} at {x:g}: {y:.4g}</title></circle>"
                )
        ly = top + plot_h + 48 + i * 18
        skipped = len(ln.points) - len(finite)
        note = f" ({skipped} non-finite: diverged)" if skipped else ""
        dash = ' stroke-dasharray="5 4"' if ln.dashed else ""
        mark = (
            f'<circle cx="{left + 9}" cy="{ly - 4}" r="4" fill="{color}"/>'
            if ln.markers_only
            else f'<line x1="{left}" y1="{ly - 4}" x2="{left + 18}" y2="{ly - 4}" stroke="{color}" '
            f'stroke-width="2"{dash}/>'
        )
        body.append(mark + _text(left + 26, ly, ln.label + note))
    return _svg(width, height, title, body, "line-chart")


def _tick(v: float) -> str:
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2e}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _int_ticks(x0: float, x1: float, target: int = 6) -> list[int]:
    span = max(1.0, x1 - x0)
    raw = span / target
    step = max(1, int(10 ** math.floor(math.log10(raw)))) if raw >= 1 else 1
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= target:
            step *= mult
            break
    start = int(math.ceil(x0 / step) * step)
    return list(range(start, int(x1) + 1, step))
