"""Reports on A/B runs: each condition against the baseline, or one run against another (--vs).

One data model (RunReport -> Comparison) rendered three ways: Markdown in the shape of the
seed addendum's tables, CSV (long form, one row per fact) and JSON - all carry the same data.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from lemlab.core.abfile import CHANGE_MARGIN, ABRun, ConditionResult, ProbeLine, parse_duration
from lemlab.core.errors import LemlabError
from lemlab.core.stats import (
    BootstrapCI,
    SignalChange,
    SignTest,
    bootstrap_ci,
    failure_counts,
    sign_test,
    signal_changes,
)


@dataclass(frozen=True)
class ProbeDelta:
    probe_id: str
    category: str
    base: float
    other: float

    @property
    def delta(self) -> float:
        return self.other - self.base


@dataclass
class Comparison:
    """`other` against `base` over the probes both have."""

    title: str
    base_label: str
    other_label: str
    rows: list[ProbeDelta]
    signals: list[SignalChange]
    failures: dict[str, tuple[int, int]]
    only_base: list[str] = field(default_factory=list)
    only_other: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def deltas(self) -> list[float]:
        return [r.delta for r in self.rows]

    @property
    def improved(self) -> int:
        return sum(1 for d in self.deltas if d > CHANGE_MARGIN)

    @property
    def regressed(self) -> int:
        return sum(1 for d in self.deltas if d < -CHANGE_MARGIN)

    @property
    def unchanged(self) -> int:
        return len(self.rows) - self.improved - self.regressed

    @property
    def base_avg(self) -> float:
        return _avg([r.base for r in self.rows])

    @property
    def other_avg(self) -> float:
        return _avg([r.other for r in self.rows])

    @property
    def avg_delta(self) -> float:
        # The summary line's arithmetic: difference of the rounded averages, rounded.
        return round(self.other_avg - self.base_avg, 2)

    @cached_property
    def sign(self) -> SignTest:
        return sign_test(self.deltas)

    @cached_property
    def ci(self) -> BootstrapCI | None:
        return bootstrap_ci(self.deltas)

    def categories(self) -> list[tuple[str, float, float]]:
        groups: dict[str, list[ProbeDelta]] = {}
        for r in self.rows:
            groups.setdefault(r.category, []).append(r)
        return [
            (cat, _avg([r.base for r in rows]), _avg([r.other for r in rows]))
            for cat, rows in groups.items()
        ]


@dataclass
class RunReport:
    source: str
    model: str
    scorer: str
    total_probes: int
    duration: str
    summary_recomputed: bool
    comparisons: list[Comparison]
    issues: list[str] = field(default_factory=list)


def _avg(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


# --- building --------------------------------------------------------------------------------


def run_report(run: ABRun, condition: str | None = None) -> RunReport:
    """One comparison per non-baseline condition (or only `condition`)."""
    names = run.condition_names
    base = run.baseline
    others = [n for n in names if n != base]
    if condition is not None:
        if condition not in others:
            raise LemlabError(
                f"no condition {condition!r} to compare with {base!r} "
                f"(conditions: {', '.join(names) or 'none'})"
            )
        others = [condition]
    summary = run.effective_summary()
    return RunReport(
        source=str(run.path or ""),
        model=summary.model,
        scorer=run.scorer,
        total_probes=len(run.probes),
        duration=summary.duration,
        summary_recomputed=summary.recomputed,
        comparisons=[_compare(run.probes, run.probes, base, other) for other in others],
        issues=[str(i) for i in run.issues],
    )


def vs_report(old: ABRun, new: ABRun, condition: str | None = None) -> RunReport:
    """The same condition in two runs, probe by probe (matched on probe id)."""
    name = condition or old.baseline
    for run in (old, new):
        if name not in run.condition_names:
            raise LemlabError(
                f"{run.path}: no condition {name!r} "
                f"(conditions: {', '.join(run.condition_names) or 'none'})"
            )
    comp = _compare(old.probes, new.probes, name, name, labels=("old", "new"))
    comp.title = f"{name}: {new.path} vs {old.path}"
    if old.scorer != new.scorer:
        comp.notes.append(
            f"different scorers ({old.scorer} vs {new.scorer}): the scales do not compare; "
            "rescore one run first (lemlab rescore)"
        )
    summary = new.effective_summary()
    return RunReport(
        source=f"{new.path} vs {old.path}",
        model=summary.model,
        scorer=new.scorer,
        total_probes=len(new.probes),
        duration=summary.duration,
        summary_recomputed=summary.recomputed,
        comparisons=[comp],
        issues=[str(i) for i in old.issues + new.issues],
    )


def _compare(
    base_probes: list[ProbeLine],
    other_probes: list[ProbeLine],
    base: str,
    other: str,
    labels: tuple[str, str] | None = None,
) -> Comparison:
    base_by_id = {p.id: p for p in base_probes if base in p.conditions}
    other_by_id = {p.id: p for p in other_probes if other in p.conditions}
    shared = [pid for pid in base_by_id if pid in other_by_id]
    pairs = [(base_by_id[pid], other_by_id[pid]) for pid in shared]
    rows = [
        ProbeDelta(o.id, o.category, b.conditions[base].lek_score, o.conditions[other].lek_score)
        for b, o in pairs
    ]
    base_label, other_label = labels or (base, other)
    results = [(b.conditions[base], o.conditions[other], o.prompt) for b, o in pairs]
    return Comparison(
        title=f"{other} vs {base}",
        base_label=base_label,
        other_label=other_label,
        rows=rows,
        signals=signal_changes((b.heuristic, o.heuristic) for b, o, _ in results),
        failures=_failure_table(results),
        only_base=[pid for pid in base_by_id if pid not in other_by_id],
        only_other=[pid for pid in other_by_id if pid not in base_by_id],
    )


def _failure_table(
    results: list[tuple[ConditionResult, ConditionResult, str]],
) -> dict[str, tuple[int, int]]:
    base = failure_counts(failure_labels(b, prompt) for b, _, prompt in results)
    other = failure_counts(failure_labels(o, prompt) for _, o, prompt in results)
    return {label: (base[label], other[label]) for label in sorted(set(base) | set(other))}


def failure_labels(result: ConditionResult, prompt: str) -> list[str]:
    """Failure-mode labels stored by the runner, else detected now from the response."""
    stored = result.extra.get("failure_modes")
    if isinstance(stored, list):
        labels = [m.get("label") if isinstance(m, Mapping) else m for m in stored]
        return [str(label) for label in labels if label]
    from lemlab.core.failure_modes import detect

    return [m.label for m in detect(result.response, prompt)]


# --- formatting helpers ----------------------------------------------------------------------


def human_duration(duration: str) -> str:
    """ "2222s" -> "37 minutes 2 seconds"; "155s" -> "2 minutes 35 seconds"; kept when unparsable."""
    seconds = parse_duration(duration)
    if seconds is None:
        return duration or "unknown"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute")] + ([] if hours else [(secs, "second")])
    words = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return " ".join(words) or "0 seconds"


def _num(x: float) -> str:
    """Per-probe score: as short as exact to 2 decimals (6, 8.5, 21.74)."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _signed(x: float, fixed: bool = False) -> str:
    if round(x, 2) == 0:
        return "0.00" if fixed else "0"
    return f"{x:+.2f}" if fixed else ("+" if x > 0 else "") + _num(x)


def _pct(count: int, total: int) -> str:
    return f"{int(100 * count / total + 0.5) if total else 0}%"


def counts_sentence(comp: Comparison, duration: str | None = None) -> str:
    n = len(comp.rows)
    text = (
        f"{_pct(comp.improved, n)} improved ({comp.improved}/{n}), "
        f"{_pct(comp.regressed, n)} regressed ({comp.regressed}/{n}), "
        f"{_pct(comp.unchanged, n)} unchanged ({comp.unchanged}/{n})."
    )
    if duration:
        text += f" Duration: {human_duration(duration)}."
    return text


def stats_sentence(comp: Comparison) -> str:
    s = comp.sign
    text = f"Sign test: {s.positive} up, {s.negative} down, {s.ties} tied; p = {s.p_value:.4g}."
    ci = comp.ci
    if ci is not None:
        text += (
            f" Mean delta {_signed(ci.mean, fixed=True)}, bootstrap {ci.level:.0%} CI "
            f"[{_signed(ci.low, fixed=True)}, {_signed(ci.high, fixed=True)}] "
            f"({ci.resamples} resamples, seed {ci.seed})."
        )
    return text


# --- Markdown --------------------------------------------------------------------------------


def to_markdown(report: RunReport) -> str:
    lines = [f"# A/B report: {report.source}", ""]
    lines.append(
        f"Model: {report.model or 'unknown'}. Scorer: {report.scorer}. "
        f"Probes: {report.total_probes}. Duration: {human_duration(report.duration)}."
    )
    if report.summary_recomputed:
        lines += [
            "",
            "_No summary line (interrupted run?): figures recomputed from the probe lines._",
        ]
    if not report.comparisons:
        lines += ["", "Only one condition in this run: nothing to compare against the baseline."]
    for comp in report.comparisons:
        lines += ["", *_comparison_markdown(comp, report.duration)]
    if report.issues:
        lines += ["", "## Unreadable lines", "", *(f"- {i}" for i in report.issues)]
    return "\n".join(lines) + "\n"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _comparison_markdown(comp: Comparison, duration: str) -> list[str]:
    b, o = comp.base_label, comp.other_label
    lines = [f"## {comp.title}", ""]
    lines += [line for note in comp.notes for line in (f"> {note}", "")]
    rows = [[r.probe_id, _num(r.base), _num(r.other), _signed(r.delta)] for r in comp.rows]
    rows.append(
        ["Average", f"{comp.base_avg:.2f}", f"{comp.other_avg:.2f}", _signed(comp.avg_delta, True)]
    )
    lines += [*_table(["Probe", b, o, "Delta"], rows), ""]
    lines += [counts_sentence(comp, duration), "", stats_sentence(comp)]
    cats = [
        [c, f"{x:.2f}", f"{y:.2f}", _signed(round(y - x, 2), True)] for c, x, y in comp.categories()
    ]
    lines += ["", "### Per category", "", *_table(["Category", b, o, "Delta"], cats)]
    sig = [
        [
            s.signal,
            f"{s.base_mean:.2f}",
            f"{s.other_mean:.2f}",
            _signed(s.delta, True),
            f"{s.up}/{s.down}",
        ]
        for s in comp.signals
    ]
    lines += ["", "### Per dimension (signals that changed)", ""]
    lines += (
        _table(["Signal", b, o, "Delta", "Probes up/down"], sig) if sig else ["No signal changed."]
    )
    fails = [[label, str(x), str(y)] for label, (x, y) in comp.failures.items()]
    lines += ["", "### Failure modes (responses)", ""]
    lines += _table(["Failure mode", b, o], fails) if fails else ["None detected."]
    for label, ids in ((b, comp.only_base), (o, comp.only_other)):
        if ids:
            lines += ["", f"Only in {label}: {', '.join(ids)}"]
    return lines


# --- CSV and JSON ----------------------------------------------------------------------------

CSV_COLUMNS = ("comparison", "kind", "name", "category", "base", "other", "delta", "value")


def to_csv(report: RunReport) -> str:
    """Long form: one row per probe, average, category, signal, failure mode and statistic."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for comp in report.comparisons:
        for row in _csv_rows(comp):
            writer.writerow([comp.title, *row])
    return buf.getvalue()


def _csv_rows(comp: Comparison) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["probe", r.probe_id, r.category, r.base, r.other, round(r.delta, 2), ""] for r in comp.rows
    ]
    rows.append(["average", "Average", "", comp.base_avg, comp.other_avg, comp.avg_delta, ""])
    rows += [["category", c, c, x, y, round(y - x, 2), ""] for c, x, y in comp.categories()]
    rows += [
        [
            "signal",
            s.signal,
            "",
            round(s.base_mean, 4),
            round(s.other_mean, 4),
            round(s.delta, 4),
            "",
        ]
        for s in comp.signals
    ]
    rows += [["failure_mode", k, "", x, y, y - x, ""] for k, (x, y) in comp.failures.items()]
    rows += [["stat", k, "", "", "", "", v] for k, v in _stats_dict(comp).items()]
    rows += [["only_in_base", pid, "", "", "", "", ""] for pid in comp.only_base]
    rows += [["only_in_other", pid, "", "", "", "", ""] for pid in comp.only_other]
    return rows


def _stats_dict(comp: Comparison) -> dict[str, Any]:
    s, ci = comp.sign, comp.ci
    return {
        "paired": len(comp.rows),
        "improved": comp.improved,
        "regressed": comp.regressed,
        "unchanged": comp.unchanged,
        "sign_positive": s.positive,
        "sign_negative": s.negative,
        "sign_ties": s.ties,
        "sign_p": s.p_value,
        "mean_delta": None if ci is None else ci.mean,
        "ci_low": None if ci is None else ci.low,
        "ci_high": None if ci is None else ci.high,
        "ci_level": None if ci is None else ci.level,
        "ci_resamples": None if ci is None else ci.resamples,
        "ci_seed": None if ci is None else ci.seed,
    }


def to_dict(report: RunReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "model": report.model,
        "scorer": report.scorer,
        "total_probes": report.total_probes,
        "duration": report.duration,
        "summary_recomputed": report.summary_recomputed,
        "comparisons": [_comparison_dict(c) for c in report.comparisons],
        "issues": report.issues,
    }


def _comparison_dict(comp: Comparison) -> dict[str, Any]:
    return {
        "title": comp.title,
        "base": comp.base_label,
        "other": comp.other_label,
        "probes": [
            {
                "id": r.probe_id,
                "category": r.category,
                "base": r.base,
                "other": r.other,
                "delta": round(r.delta, 2),
            }
            for r in comp.rows
        ],  # fmt: skip
        "average": {"base": comp.base_avg, "other": comp.other_avg, "delta": comp.avg_delta},
        "categories": [
            {"category": c, "base": x, "other": y, "delta": round(y - x, 2)}
            for c, x, y in comp.categories()
        ],
        "signals": [
            {
                "signal": s.signal,
                "base": s.base_mean,
                "other": s.other_mean,
                "delta": s.delta,
                "up": s.up,
                "down": s.down,
            }
            for s in comp.signals
        ],  # fmt: skip
        "failure_modes": {k: {"base": x, "other": y} for k, (x, y) in comp.failures.items()},
        "stats": _stats_dict(comp),
        "only_in_base": comp.only_base,
        "only_in_other": comp.only_other,
        "notes": comp.notes,
    }


def to_json(report: RunReport) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"md": to_markdown, "csv": to_csv, "json": to_json}
