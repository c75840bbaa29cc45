"""Self-contained HTML reports, for people who will never open a terminal: an A/B run (or two
runs compared), and training runs. One file: inline CSS, inline SVG charts (core/svg_charts),
no script, no font or image fetched from anywhere, readable on a phone, printable.

It carries what the Markdown report carries (it is built from the same RunReport) plus charts,
each beside a table or sentence that says the same in text. Every string from a file or a model
is shown as text: control characters made visible (core/safe_text), then HTML-escaped.
"""

from __future__ import annotations

import html
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.ab.abfile import CHANGE_MARGIN, ABRun, ConditionResult
from lemlab.core.ab.report import (
    COUNTS_RULE,
    Comparison,
    RunReport,
    counts_sentence,
    human_duration,
    signal_moves_text,
    stats_sentence,
)
from lemlab.core.errors import LemlabError
from lemlab.core.html import svg_charts as charts
from lemlab.core.models.adapters import read_adapter_info
from lemlab.core.safe_text import visible
from lemlab.core.training.events import fold, parse_lines, resolve_run_source

CSS = """
:root { color-scheme: light; --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff;
  --soft:#f6f8fa; --pos:#1a7f37; --neg:#cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.6em; margin: 0.2em 0; } h2 { font-size: 1.3em; margin-top: 1.6em;
  border-bottom: 1px solid var(--line); } h3 { font-size: 1.05em; margin-top: 1.2em; }
.meta { color: var(--muted); } .meta b { color: var(--ink); }
.note { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; border-radius: 6px; }
.issues { background: #ffebe9; border: 1px solid #ff8182; padding: 6px 10px; border-radius: 6px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; max-width: 100%; }
.pos { color: var(--pos); } .neg { color: var(--neg); }
svg.chart { max-width: 100%; height: auto; font-size: 12px; }
svg .axis, svg .grid { stroke: var(--line); } svg .frame { fill: none; stroke: var(--line); }
svg .tick, svg .value { fill: var(--muted); } svg .empty { fill: var(--soft); }
svg text { fill: var(--ink); } svg .axis-label { fill: var(--muted); }
figure { margin: 12px 0; } figcaption { color: var(--muted); font-size: 0.9em; }
details { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
summary { cursor: pointer; font-weight: 600; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
@media (max-width: 700px) { .pair { grid-template-columns: 1fr; } }
pre.text { white-space: pre-wrap; word-break: break-word; background: var(--soft);
  padding: 8px; border-radius: 6px; margin: 4px 0; font: 13px/1.45 ui-monospace, monospace; }
.tag { display: inline-block; background: #ffebe9; color: var(--neg); border-radius: 10px;
  padding: 0 8px; font-size: 0.85em; margin-right: 4px; }
@media print { details { break-inside: avoid; } details > *:not(summary) { display: block; } }
"""


def text(value: object) -> str:
    """Untrusted text for HTML: controls shown visibly, then escaped (never markup)."""
    return html.escape(visible(str(value)), quote=True)


def _page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{CSS}</style></head><body><main>"
        + "".join(body)
        + "</main></body></html>\n"
    )


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[object]],
    num_cols: set[int] | None = None,
    cls: str = "",
) -> str:
    num_cols = num_cols or set()
    out = [f'<div class="scroll"><table class="{cls}"><thead><tr>']
    out += [f"<th>{text(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            klass = ' class="num"' if i in num_cols else ""
            out.append(f"<td{klass}>{cell if isinstance(cell, Raw) else text(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


class Raw(str):
    """Already-escaped HTML for a table cell (built here from escaped parts only)."""


def _signed(x: float) -> Raw:
    klass = "pos" if x > CHANGE_MARGIN else "neg" if x < -CHANGE_MARGIN else ""
    return Raw(f'<span class="{klass}">{x:+.2f}</span>')


# --- A/B runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """Where one side of a comparison's responses live: a run and a condition in it."""

    run: ABRun
    condition: str


@dataclass
class OverrideNote:
    corrected: float
    original: float
    reason: str


@dataclass
class HtmlContext:
    sides: list[tuple[Side, Side]]  # one (base, other) per comparison, in report order
    overrides: Mapping[tuple[str, str], OverrideNote] = field(default_factory=dict)
    generated: str = ""
    # The run file the overrides belong to (with --vs both runs may share condition names):
    # None = the only run shown.
    overrides_run: str | Path | None = None

    def override(self, side: Side, probe_id: str) -> OverrideNote | None:
        if self.overrides_run is not None and side.run.path is not None:
            if not _same_file(Path(side.run.path), Path(self.overrides_run)):
                return None
        return self.overrides.get((probe_id, side.condition))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def ab_report_html(report: RunReport, ctx: HtmlContext) -> str:
    name = Path(report.model).name if "/" in report.model else report.model
    body = [f"<header><h1>A/B report: {text(name or 'unknown model')}</h1>"]
    body.append(
        f'<p class="meta"><b>Model</b> {text(report.model or "unknown")} · '
        f"<b>source</b> {text(report.source)} · <b>scorer</b> {text(report.scorer)}"
        f" · <b>probes</b> {report.total_probes} · <b>duration</b> "
        f"{text(human_duration(report.duration) if report.duration else 'unknown')}"
        + (f" · <b>generated</b> {text(ctx.generated)}" if ctx.generated else "")
        + "</p></header>"
    )
    if report.summary_recomputed:
        body.append(
            '<p class="note">The run has no summary line yet (interrupted?): the figures '
            "below are recomputed from its probe lines.</p>"
        )
    if ctx.overrides:
        body.append(
            f'<p class="note">{len(ctx.overrides)} score override(s) from the session are '
            "shown in the probe blocks, with their reasons; the tables and charts keep "
            "the scorer's own scores.</p>"
        )
    if report.issues:
        body.append(
            '<div class="issues"><b>Issues in the file</b><ul>'
            + "".join(f"<li>{text(i)}</li>" for i in report.issues)
            + "</ul></div>"
        )
    body.append(_heat_section(report))
    for comp, (base, other) in zip(report.comparisons, ctx.sides, strict=True):
        body.append(_comparison_section(comp, base, other, report, ctx))
    if report.timing:
        rows = [
            (
                t.run or "",
                t.condition,
                t.responses,
                f"{t.mean_s:.1f}",
                f"{t.cache_build_s:.1f}",
                f"{t.mean_without_build_s:.1f}",
            )
            for t in report.timing
            if t.responses
        ]
        body.append("<h2>Generation time</h2>")
        body.append(
            _table(
                [
                    "Run",
                    "Condition",
                    "Responses",
                    "Mean time_s (s)",
                    "Kernel cache build (s)",
                    "Mean without the build (s)",
                ],
                rows,
                {2, 3, 4, 5},
            )
        )
    return _page(f"lemlab A/B report: {report.model}", body)


def _heat_section(report: RunReport) -> str:
    cols: list[str] = []
    values: dict[tuple[str, str], float] = {}
    for comp in report.comparisons:
        for label in (comp.base_label, comp.other_label):
            if label not in cols:
                cols.append(label)
        for cat, base_avg, other_avg in comp.categories():
            values[(cat, comp.base_label)] = base_avg
            values[(cat, comp.other_label)] = other_avg
    rows = sorted({cat for cat, _ in values})
    if not rows:
        return ""
    svg = charts.heat_map(rows, cols, values, "Mean score by category and condition")
    table = _table(
        ["Category", *cols],
        [
            [cat, *(f"{values[(cat, c)]:.2f}" if (cat, c) in values else "" for c in cols)]
            for cat in rows
        ],
        set(range(1, len(cols) + 1)),
    )
    return (
        "<h2>Categories</h2><figure>" + svg + "<figcaption>Mean score per category and "
        "condition (darker is higher). The same numbers:</figcaption></figure>" + table
    )


def _comparison_section(
    comp: Comparison, base: Side, other: Side, report: RunReport, ctx: HtmlContext
) -> str:
    anchor = f"cmp-{zlib.crc32(comp.title.encode('utf-8')):08x}"  # stable: same page every run
    out = [f'<section id="{anchor}"><h2>{text(comp.title)}</h2>']
    for note in comp.notes:
        out.append(f'<p class="note">{text(note)}</p>')
    if comp.settings:
        out.append("<h3>Settings that differ</h3>")
        out.append(
            _table(
                ["Setting", comp.base_label, comp.other_label],
                [(d.setting, d.base, d.other) for d in comp.settings],
            )
        )
    if comp.only_base or comp.only_other:
        out.append(
            '<p class="note">Probes in one side only (not compared): '
            f"{text(', '.join(comp.only_base + comp.only_other))}</p>"
        )
    if not comp.rows:
        out.append("<p>No probe is on both sides.</p></section>")
        return "".join(out)
    out.append(f"<p><b>{text(counts_sentence(comp))}</b> {text(COUNTS_RULE)}</p>")
    out.append(f"<p>{text(stats_sentence(comp))}</p>")
    bars = charts.delta_bars(
        [(r.probe_id, r.delta) for r in comp.rows],
        f"Per-probe change, {comp.other_label} minus {comp.base_label}",
    )
    out.append(
        "<figure>" + bars + "<figcaption>Per-probe change, sorted (green: improved by more "
        f"than {CHANGE_MARGIN:g}, red: regressed, grey: unchanged). The table below lists "
        "every bar.</figcaption></figure>"
    )
    rows = [
        (
            Raw(f'<a href="#{anchor}-{_id(r.probe_id)}">{text(r.probe_id)}</a>'),
            r.category,
            f"{r.base:.2f}",
            f"{r.other:.2f}",
            _signed(r.delta),
        )
        for r in comp.rows
    ]
    rows.append(
        (
            Raw("<b>Average</b>"),
            "",
            f"{comp.base_avg:.2f}",
            f"{comp.other_avg:.2f}",
            _signed(comp.avg_delta),
        )
    )
    out.append(
        _table(["Probe", "Category", comp.base_label, comp.other_label, "Delta"], rows, {2, 3, 4})
    )
    strips = charts.score_strips(
        [
            (comp.base_label, [r.base for r in comp.rows]),
            (comp.other_label, [r.other for r in comp.rows]),
        ],
        "Score distribution per condition",
    )
    out.append(
        "<h3>Score distributions</h3><figure>"
        + strips
        + "<figcaption>"
        + text(_distribution_text(comp))
        + "</figcaption></figure>"
    )
    if comp.probe_signals:
        out.append("<h3>Dimensions changed per probe</h3>")
        dim_rows = []
        for ps in comp.probe_signals:
            signal, values = signal_moves_text(ps)
            dim_rows.append((ps.probe_id, signal, values))
        out.append(
            _table(
                ["Probe", "Dimension changed", f"{comp.base_label} -> {comp.other_label}"], dim_rows
            )
        )
    if comp.signals:
        out.append("<h3>Signals, mean per probe</h3>")
        out.append(
            _table(
                ["Signal", comp.base_label, comp.other_label, "Change", "Probes up / down"],
                [
                    (
                        s.signal,
                        f"{s.base_mean:.2f}",
                        f"{s.other_mean:.2f}",
                        f"{s.delta:+.2f}",
                        f"{s.up} / {s.down}",
                    )
                    for s in comp.signals
                ],
                {1, 2, 3},
            )
        )
    out.append("<h3>Failure modes</h3>")
    if comp.failure_evidence:
        out.append(
            _table(
                [
                    "Probe",
                    "Failure mode",
                    f"Evidence ({comp.base_label})",
                    f"Evidence ({comp.other_label})",
                ],
                [(f.probe_id, f.label, f.base or "", f.other or "") for f in comp.failure_evidence],
            )
        )
    else:
        out.append("<p>None detected on either side.</p>")
    out.append("<h3>Probes</h3>")
    out += [_probe_details(anchor, r.probe_id, base, other, ctx) for r in comp.rows]
    out.append("</section>")
    return "".join(out)


def _distribution_text(comp: Comparison) -> str:
    parts = []
    for label, vals in (
        (comp.base_label, [r.base for r in comp.rows]),
        (comp.other_label, [r.other for r in comp.rows]),
    ):
        med = charts.median(vals)
        finite = [v for v in vals if math.isfinite(v)]
        if med is not None:
            parts.append(f"{label}: median {med:.2f}, min {min(finite):.2f}, max {max(finite):.2f}")
    return "; ".join(parts) + " (each dot is one probe, the bar is the median)."


def _id(probe_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in probe_id)


def _probe_details(anchor: str, probe_id: str, base: Side, other: Side, ctx: HtmlContext) -> str:
    bp, op = base.run.probe(probe_id), other.run.probe(probe_id)
    b = bp.conditions.get(base.condition) if bp else None
    o = op.conditions.get(other.condition) if op else None
    head = f"{probe_id}"
    if b is not None and o is not None:
        head += f" · {b.lek_score:.2f} -> {o.lek_score:.2f} ({o.lek_score - b.lek_score:+.2f})"
    out = [f'<details id="{anchor}-{_id(probe_id)}"><summary>{text(head)}</summary>']
    probe = op or bp
    prompt = probe.prompt if probe else ""
    out.append(f'<p><b>Prompt</b></p><pre class="text">{text(prompt)}</pre>')
    out.append('<div class="pair">')
    for side, result in ((base, b), (other, o)):
        out.append(f"<div><p><b>{text(side.condition)}</b>")
        if result is not None:
            out.append(f" · score {result.lek_score:.2f}")
            note = ctx.override(side, probe_id)
            if note is not None:
                out.append(
                    f" · <b>override</b> {note.original:.2f} -> {note.corrected:.2f}: "
                    f"{text(note.reason)}"
                )
        out.append("</p>")
        if result is None:
            out.append("<p>(no response)</p></div>")
            continue
        out.append(_failure_tags(result))
        out.append(f'<pre class="text">{text(result.response)}</pre>')
        fired = [
            (k, v)
            for k, v in result.heuristic.items()
            if k != "lek_score" and isinstance(v, int | float) and not isinstance(v, bool) and v
        ]
        if fired:
            out.append("<p>Signals: " + ", ".join(f"{text(k)} {v:g}" for k, v in fired) + "</p>")
        out.append("</div>")
    out.append("</div></details>")
    return "".join(out)


def _failure_tags(result: ConditionResult) -> str:
    """The failure modes stored with the response (labels, or {label, evidence} records)."""
    modes: Any = result.extra.get("failure_modes") or []
    labels = [m.get("label") if isinstance(m, dict) else str(m) for m in modes]
    return "".join(f'<span class="tag">{text(lab)}</span>' for lab in labels if lab)


# --- training runs -----------------------------------------------------------------------------


@dataclass
class TrainingSeries:
    """One training run as the report draws it (built by the caller from events.jsonl)."""

    label: str
    train: list[tuple[float, float]]
    val: list[tuple[float, float]]
    learning_rate: list[tuple[float, float]]
    tokens_per_second: list[tuple[float, float]]
    checkpoints: list[tuple[int, str]]
    config: list[tuple[str, str]]  # (setting, value), effective gradient included
    status: str
    checkpoint_scores: list[tuple[int, float]] = field(default_factory=list)
    effective_gradient_note: str = ""


def training_report_html(runs: Sequence[TrainingSeries], generated: str = "") -> str:
    names = ", ".join(r.label for r in runs)
    body = [f"<header><h1>Training report: {text(names)}</h1>"]
    body.append(
        f'<p class="meta"><b>Runs</b> {len(runs)}'
        + (f" · <b>generated</b> {text(generated)}" if generated else "")
        + "</p></header>"
    )
    loss_lines = []
    for r in runs:
        loss_lines.append(charts.Line(f"{r.label} train loss", r.train))
        if r.val:
            loss_lines.append(
                charts.Line(
                    f"{r.label} validation loss (measured points)", r.val, markers_only=True
                )
            )
    body.append(
        "<h2>Loss</h2><figure>"
        + charts.line_chart(loss_lines, "Training and validation loss", "loss")
        + "<figcaption>Validation loss is drawn only where it was measured.</figcaption></figure>"
    )
    body.append(
        _table(
            ["Run", "Status", "First train loss", "Last train loss", "Best validation loss"],
            [(r.label, r.status, _first(r.train), _last(r.train), _best(r.val)) for r in runs],
            {2, 3, 4},
        )
    )
    for key, label, unit in (
        ("learning_rate", "Learning rate", "lr"),
        ("tokens_per_second", "Tokens per second", "tok/s"),
    ):
        lines = [charts.Line(r.label, getattr(r, key)) for r in runs if getattr(r, key)]
        if lines:
            body.append(
                f"<h2>{label}</h2><figure>" + charts.line_chart(lines, label, unit) + "</figure>"
            )
    for r in runs:
        body.append(f"<h2>{text(r.label)}: configuration</h2>")
        body.append(_table(["Setting", "Value"], r.config))
        if r.effective_gradient_note:
            body.append(f"<p>{text(r.effective_gradient_note)}</p>")
        if r.checkpoints:
            scores = dict(r.checkpoint_scores)
            val = dict((int(x), y) for x, y in r.val)
            body.append("<h3>Checkpoints</h3>")
            body.append(
                _table(
                    ["Iteration", "File", "Validation loss at it", "Score"],
                    [
                        (
                            it,
                            name,
                            f"{val[it]:.4f}" if it in val else "",
                            f"{scores[it]:.2f}" if it in scores else "not scored",
                        )
                        for it, name in r.checkpoints
                    ],
                    {0, 2, 3},
                )
            )
    return _page(f"lemlab training report: {names}", body)


def _first(points: Sequence[tuple[float, float]]) -> str:
    return f"{points[0][1]:.4f}" if points else ""


def _last(points: Sequence[tuple[float, float]]) -> str:
    return f"{points[-1][1]:.4f}" if points else ""


def _best(points: Sequence[tuple[float, float]]) -> str:
    finite = [p for p in points if math.isfinite(p[1])]
    if not finite:
        return ""
    it, loss = min(finite, key=lambda p: p[1])
    return f"{loss:.4f} at {int(it)}"


def training_series(
    folder: str | Path,
    label: str | None = None,
    checkpoint_scores: Sequence[tuple[int, float]] = (),
) -> TrainingSeries:
    """A training run's series from its adapter folder (events.jsonl, else an mlx-lm log) and
    its configuration (adapter_config.json, with the effective-gradient figure)."""
    try:
        source = resolve_run_source(folder)
    except FileNotFoundError as exc:
        raise LemlabError(str(exc)) from None
    raw = source.file.read_text(encoding="utf-8", errors="replace").split("\n")
    events = parse_lines([ln for ln in raw if ln.strip()], source.file.suffix == ".jsonl")
    state = fold(events)
    trains = [e for e in events if e.kind == "train" and e.iteration is not None]
    series = TrainingSeries(
        label=label or Path(folder).name,
        train=[(float(it), loss) for it, loss in state.train_points],
        val=[(float(it), loss) for it, loss in state.val_points],
        learning_rate=[
            (float(e.iteration), e.learning_rate)  # type: ignore[arg-type]
            for e in trains
            if e.learning_rate is not None
        ],
        tokens_per_second=[
            (float(e.iteration), e.tokens_per_second)  # type: ignore[arg-type]
            for e in trains
            if e.tokens_per_second is not None
        ],
        checkpoints=list(state.checkpoints),
        config=[],
        status=state.status + (f": {state.message}" if state.message else ""),
        checkpoint_scores=list(checkpoint_scores),
    )
    try:
        info = read_adapter_info(source.folder)
    except LemlabError as exc:
        series.config = [("configuration", f"unknown ({exc})")]
        return series
    layers = "all" if info.num_layers == -1 else info.num_layers
    series.config = [
        ("base model", info.base_model),
        ("fine-tune type", info.fine_tune_type),
        ("learning rate", _g(info.learning_rate)),
        ("iterations", _g(info.iters)),
        ("batch size", _g(info.batch_size)),
        ("layers trained", _g(layers)),
        ("LoRA rank / scale / dropout", f"{_g(info.rank)} / {_g(info.scale)} / {_g(info.dropout)}"),
        ("effective gradient (iters x batch)", _g(info.effective_gradient)),
    ]
    if info.effective_gradient:
        series.effective_gradient_note = (
            f"Effective gradient: {info.effective_gradient} examples' worth of gradient "
            f"({_g(info.iters)} iterations x batch {_g(info.batch_size)}). The research's collapsed "
            "1B run had about 2,000 (500 x 4) where the 27B run that worked had about 400 (400 x 1): "
            "compare this figure with the model's size before reading its scores."
        )
    return series


def _g(value: object) -> str:
    if value is None:
        return "unknown"
    return f"{value:g}" if isinstance(value, float) else str(value)
