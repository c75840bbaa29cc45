"""Reports on A/B runs: conditions of one run against a reference condition (the baseline, or
any named one), or a condition of one run against a condition of another (--vs).

One data model (RunReport -> Comparison) rendered three ways: Markdown in the shape of the
seed addendum's tables, CSV (long form, one row per fact) and JSON - all carry the same data:
per-probe scores, the research's improved / regressed counts (a change of more than 0.5), the
sign test (any nonzero change), per-category and per-signal means, the signals that changed on
each probe ("Probe | Dimension changed | Base -> Trained"), failure modes with the evidence the
detector saw, the settings that differ between two runs, and generation time with the kernel
cache build reported apart.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeGuard

from lemlab.core.ab.abfile import CHANGE_MARGIN, ABRun, ConditionResult, ProbeLine, parse_duration
from lemlab.core.errors import LemlabError
from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import detect
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


@dataclass(frozen=True)
class SignalMove:
    """One heuristic signal that changed on one probe."""

    signal: str
    base: float
    other: float


@dataclass(frozen=True)
class ProbeSignals:
    """The signals that changed on one probe, largest change first."""

    probe_id: str
    moves: list[SignalMove]


@dataclass(frozen=True)
class FailureEvidence:
    """One failure mode on one probe: what the detector saw on each side (None: not there)."""

    probe_id: str
    label: str
    base: str | None
    other: str | None


@dataclass(frozen=True)
class SettingDiff:
    setting: str
    base: str
    other: str


@dataclass(frozen=True)
class Timing:
    """Generation time of one condition. `cache_build_s`: the part of time_s spent prefilling
    the kernel into the prefix cache (once per run, inside the first kernel reply)."""

    run: str
    condition: str
    responses: int
    total_s: float
    cache_build_s: float
    built_on: list[str] = field(default_factory=list)  # probe ids whose time_s holds a build

    @property
    def mean_s(self) -> float:
        return self.total_s / self.responses if self.responses else 0.0

    @property
    def mean_without_build_s(self) -> float:
        return (self.total_s - self.cache_build_s) / self.responses if self.responses else 0.0


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
    probe_signals: list[ProbeSignals] = field(default_factory=list)
    failure_evidence: list[FailureEvidence] = field(default_factory=list)
    settings: list[SettingDiff] = field(default_factory=list)  # --vs: what differs between runs

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
    timing: list[Timing] = field(default_factory=list)


def _avg(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0


# --- building --------------------------------------------------------------------------------


def run_report(run: ABRun, condition: str | None = None, reference: str | None = None) -> RunReport:
    """One comparison per condition against `reference` (default: the baseline), or only
    `condition` against it ("lek+json vs lek")."""
    names = run.condition_names
    base = reference or run.baseline
    _need_condition(run, base, "to compare against")
    others = [n for n in names if n != base]
    if condition is not None:
        if condition == base:
            raise LemlabError(f"condition {condition!r} is the reference: name another (--ref)")
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
        comparisons=[
            _compare(run.probes, run.probes, base, other, points=points_for(run.scorer))
            for other in others
        ],
        issues=[str(i) for i in run.issues],
        timing=run_timing(run),
    )


def split_run_spec(spec: str) -> tuple[str, str | None]:
    """`run.jsonl` -> (run.jsonl, None); `run.jsonl:lek+json` -> (run.jsonl, "lek+json").

    A name that exists as a file is always the whole file name (even with a colon in it);
    otherwise the longest prefix before a colon that is a file gives the split."""
    if Path(spec).is_file() or ":" not in spec:
        return spec, None
    cut = len(spec)
    while (cut := spec.rfind(":", 0, cut)) > 0:
        if Path(spec[:cut]).is_file():
            return spec[:cut], spec[cut + 1 :] or None
    return spec, None


def _need_condition(run: ABRun, name: str, what: str = "") -> None:
    if name not in run.condition_names:
        where = f"{run.path}: " if run.path else ""
        raise LemlabError(
            f"{where}no condition {name!r}{' ' + what if what else ''} "
            f"(conditions: {', '.join(run.condition_names) or 'none'})"
        )


def vs_report(
    old: ABRun, new: ABRun, condition: str | None = None, reference: str | None = None
) -> RunReport:
    """A condition of `new` against a condition of `old`, probe by probe (matched on probe
    id): `condition` in new (default: old's baseline name) against `reference` in old
    (default: the same name). "run A baseline vs run B lek": vs_report(A, B, "lek", "baseline")."""
    new_name = condition or old.baseline
    old_name = reference or new_name
    _need_condition(old, old_name)
    _need_condition(new, new_name)
    same = old_name == new_name
    labels = ("old", "new") if same else (f"old:{old_name}", f"new:{new_name}")
    points = points_for(new.scorer) if old.scorer == new.scorer else None
    comp = _compare(old.probes, new.probes, old_name, new_name, labels=labels, points=points)
    comp.title = (
        f"{new_name}: {new.path} vs {old.path}"
        if same
        else f"{new.path}:{new_name} vs {old.path}:{old_name}"
    )
    if old.scorer != new.scorer:
        comp.notes.append(
            f"different scorers ({old.scorer} vs {new.scorer}): the scales do not compare; "
            "rescore one run first (lemlab rescore)"
        )
    comp.settings = settings_diff(old, old_name, new, new_name)
    if comp.settings:
        listed = ", ".join(d.setting for d in comp.settings)
        comp.notes.append(f"the runs differ in: {listed} (see the settings table)")
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
        timing=run_timing(old, "old", [old_name]) + run_timing(new, "new", [new_name]),
    )


def _compare(
    base_probes: list[ProbeLine],
    other_probes: list[ProbeLine],
    base: str,
    other: str,
    labels: tuple[str, str] | None = None,
    points: PointsFn | None = None,
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
        probe_signals=[
            ps
            for pid, (b, o, _) in zip(shared, results, strict=True)
            if (ps := probe_signal_moves(pid, b.heuristic, o.heuristic, points)).moves
        ],
        failure_evidence=[
            ev
            for pid, (b, o, prompt) in zip(shared, results, strict=True)
            for ev in _probe_failures(pid, b, o, prompt)
        ],
    )


PointsFn = Callable[[Mapping[str, Any]], Mapping[str, float]]


def probe_signal_moves(
    probe_id: str,
    base: Mapping[str, Any],
    other: Mapping[str, Any],
    points: PointsFn | None = None,
) -> ProbeSignals:
    """The numeric signals (lek_score aside) whose value differs, the one that moved the score
    most first (by the scorer's points when `points` is given, else by the raw change)."""
    moves = []
    for name, b in base.items():
        o = other.get(name)
        if name == "lek_score" or not _is_num(b) or not _is_num(o) or b == o:
            continue
        moves.append(SignalMove(name, float(b), float(o)))
    weight = _points_moved(base, other, points)
    # Stable sort: ties keep the scorer's order.
    moves.sort(key=lambda m: (-weight.get(m.signal, 0.0), -abs(m.other - m.base)))
    return ProbeSignals(probe_id, moves)


def _points_moved(
    base: Mapping[str, Any], other: Mapping[str, Any], points: PointsFn | None
) -> dict[str, float]:
    if points is None:
        return {}
    try:
        pb, po = points(base), points(other)
    except (KeyError, TypeError, ValueError):
        return {}  # signals this scorer does not know (an older heuristic)
    return {k: abs(po[k] - pb[k]) for k in pb if k in po}


def points_for(scorer_id: str) -> PointsFn | None:
    """The scorer's points function, for ordering signals by what they did to the score."""
    try:
        return get_scorer(scorer_id).points
    except LemlabError:
        return None


def _is_num(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _failure_table(
    results: list[tuple[ConditionResult, ConditionResult, str]],
) -> dict[str, tuple[int, int]]:
    base = failure_counts(failure_labels(b, prompt) for b, _, prompt in results)
    other = failure_counts(failure_labels(o, prompt) for _, o, prompt in results)
    return {label: (base[label], other[label]) for label in sorted(set(base) | set(other))}


def failure_labels(result: ConditionResult, prompt: str) -> list[str]:
    """Failure-mode labels stored by the runner, else detected now from the response."""
    return [label for label, _ in failure_findings(result, prompt)]


def failure_findings(result: ConditionResult, prompt: str) -> list[tuple[str, str]]:
    """(label, evidence) per failure mode. Stored entries `{label, evidence, detail}` are used
    as they are; labels stored without evidence (older lemlab files) get the evidence the
    detector finds now; files without failure modes (the research's) are detected now."""
    stored = result.extra.get("failure_modes")
    if not isinstance(stored, list):
        return [(m.label, m.evidence) for m in _detect(result.response, prompt)]
    found: list[tuple[str, str]] = []
    missing: list[str] = []
    for item in stored:
        label = item.get("label") if isinstance(item, Mapping) else item
        if not label:
            continue
        evidence = item.get("evidence") if isinstance(item, Mapping) else None
        if evidence:
            found.append((str(label), str(evidence)))
        else:
            missing.append(str(label))
            found.append((str(label), ""))
    if missing:
        now = {m.label: m.evidence for m in _detect(result.response, prompt)}
        found = [
            (lb, ev or now.get(lb, "stored label; not detected again now")) for lb, ev in found
        ]
    return found


def _detect(response: str, prompt: str) -> list[Any]:
    return detect(response, prompt)


def _probe_failures(
    probe_id: str, base: ConditionResult, other: ConditionResult, prompt: str
) -> list[FailureEvidence]:
    b = dict(failure_findings(base, prompt))
    o = dict(failure_findings(other, prompt))
    return [
        FailureEvidence(probe_id, label, b.get(label), o.get(label))
        for label in dict.fromkeys([*b, *o])
    ]


# --- what differs between two runs -----------------------------------------------------------


def run_settings(run: ABRun, condition: str) -> dict[str, str]:
    """The settings that shape one condition's replies, as display strings."""
    summary = run.effective_summary()
    extra = summary.extra
    entry = next((p.conditions[condition] for p in run.probes if condition in p.conditions), None)
    cond_extra = entry.extra if entry is not None else {}
    settings: dict[str, Any] = {
        "model": summary.model or None,
        "max tokens": summary.max_tokens,
        "scorer": run.scorer,
        "sampler": extra.get("sampler"),
        "adapter": cond_extra.get("adapter"),
        "kernel sha256": cond_extra.get("kernel_sha256"),
        "system form": cond_extra.get("system_form"),
        "condition settings": (extra.get("condition_settings") or {}).get(condition)
        if isinstance(extra.get("condition_settings"), Mapping)
        else None,
        "endpoints": extra.get("endpoints"),
        "mlx-lm version": extra.get("mlx_lm_version"),
        "lemlab version": extra.get("lemlab_version"),
    }
    return {k: _setting_text(v) for k, v in settings.items()}


def _setting_text(value: Any) -> str:
    if value is None or value == {} or value == []:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def settings_diff(old: ABRun, old_name: str, new: ABRun, new_name: str) -> list[SettingDiff]:
    """Every setting whose value differs between old's and new's compared conditions."""
    a, b = run_settings(old, old_name), run_settings(new, new_name)
    return [SettingDiff(k, a[k], b[k]) for k in a if a[k] != b[k]]


# --- generation time -------------------------------------------------------------------------


def run_timing(
    run: ABRun, label: str = "", conditions: Sequence[str] | None = None
) -> list[Timing]:
    """time_s per condition, with the kernel-cache build (`cache_build_s`) counted apart."""
    out = []
    for name in conditions if conditions is not None else run.condition_names:
        results = [(p.id, p.conditions[name]) for p in run.probes if name in p.conditions]
        recorded = [(pid, c.extra.get("cache_build_s")) for pid, c in results]
        builds = [(pid, float(b)) for pid, b in recorded if _is_num(b) and b > 0]
        out.append(
            Timing(
                label,
                name,
                len(results),
                math.fsum(c.time_s for _, c in results),
                math.fsum(b for _, b in builds),
                [pid for pid, _ in builds],
            )
        )
    return out


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


def percentages(counts: Sequence[int]) -> list[int]:
    """Whole percentages of the counts that sum to exactly 100 (largest remainder: the floors,
    then one more point to the largest fractions; ties go to the earlier count)."""
    total = sum(counts)
    if total == 0:
        return [0] * len(counts)
    pct = [100 * c // total for c in counts]
    # Integer remainders: float fractions would break ties by rounding noise.
    order = sorted(range(len(counts)), key=lambda i: -(100 * counts[i] % total))
    for i in order[: 100 - sum(pct)]:
        pct[i] += 1
    return pct


def counts_sentence(comp: Comparison, duration: str | None = None) -> str:
    n = len(comp.rows)
    up, down, same = percentages([comp.improved, comp.regressed, comp.unchanged])
    text = (
        f"{up}% improved ({comp.improved}/{n}), "
        f"{down}% regressed ({comp.regressed}/{n}), "
        f"{same}% unchanged ({comp.unchanged}/{n})."
    )
    if duration:
        text += f" Duration: {human_duration(duration)}."
    return text


COUNTS_RULE = (
    f"Improved / regressed: the score moved by more than {CHANGE_MARGIN:g} (the research's rule); "
    "the sign test counts every nonzero change, so its up / down counts can be larger."
)


def stats_sentence(comp: Comparison) -> str:
    s = comp.sign
    text = (
        f"Sign test: {s.positive} up, {s.negative} down, {s.ties} tied (any nonzero change "
        f"counts); p = {s.p_value:.4g}."
    )
    ci = comp.ci
    if ci is not None:
        text += f" Mean delta {_signed(comp.avg_delta, fixed=True)}"
        if round(ci.mean, 2) != comp.avg_delta:
            # The Average row follows the research: difference of the two rounded averages.
            text += (
                f" (as in the Average row, from the rounded averages; the mean of the "
                f"per-probe deltas is {ci.mean:+.4f})"
            )
        text += (
            f", bootstrap {ci.level:.0%} CI "
            f"[{_signed(ci.low, fixed=True)}, {_signed(ci.high, fixed=True)}] "
            f"({ci.resamples} resamples, seed {ci.seed})."
        )
    return text


def _cell(text: str) -> str:
    """Text from a file or a model inside a Markdown table cell: no pipes, no line breaks."""
    return str(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _value(x: float) -> str:
    return f"{x:g}"


def signal_moves_text(ps: ProbeSignals) -> tuple[str, str]:
    """("creative_form", "2 -> 4; engagement_depth 1 -> 2"): the seed's per-probe shape."""
    first, *rest = ps.moves
    values = f"{_value(first.base)} -> {_value(first.other)}"
    more = [f"{m.signal} {_value(m.base)} -> {_value(m.other)}" for m in rest]
    return first.signal, "; ".join([values, *more])


def timing_lines(report: RunReport) -> list[str]:
    rows = [t for t in report.timing if t.responses]
    if not rows:
        return []
    with_run = any(t.run for t in rows)
    head = [
        *(["Run"] if with_run else []),
        "Condition",
        "Responses",
        "Mean time_s",
        "Kernel cache build",
        "Mean without the build",
    ]
    body = []
    for t in rows:
        build = f"{t.cache_build_s:.1f} s ({', '.join(t.built_on)})" if t.built_on else "-"
        body.append(
            [
                *([t.run] if with_run else []),
                _cell(t.condition),
                str(t.responses),
                f"{t.mean_s:.1f}",
                _cell(build),
                f"{t.mean_without_build_s:.1f}" if t.built_on else "-",
            ]
        )
    return [
        "## Generation time",
        "",
        *_table(head, body),
        "",
        "A kernel's first reply prefills the kernel once into the prefix cache for the whole "
        "run; its time_s includes that build, shown apart here (older files do not record it).",
    ]


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
    timing = timing_lines(report)
    if timing:
        lines += ["", *timing]
    if report.issues:
        lines += ["", "## Unreadable lines", "", *(f"- {i}" for i in report.issues)]
    return "\n".join(lines) + "\n"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _comparison_markdown(comp: Comparison, duration: str) -> list[str]:
    b, o = _cell(comp.base_label), _cell(comp.other_label)
    lines = [f"## {comp.title}", ""]
    lines += [line for note in comp.notes for line in (f"> {note}", "")]
    if comp.settings:
        rows_s = [[_cell(d.setting), _cell(d.base), _cell(d.other)] for d in comp.settings]
        lines += ["### Settings that differ", "", *_table(["Setting", b, o], rows_s), ""]
    rows = [[_cell(r.probe_id), _num(r.base), _num(r.other), _signed(r.delta)] for r in comp.rows]
    rows.append(
        ["Average", f"{comp.base_avg:.2f}", f"{comp.other_avg:.2f}", _signed(comp.avg_delta, True)]
    )
    lines += [*_table(["Probe", b, o, "Delta"], rows), ""]
    lines += [counts_sentence(comp, duration), "", COUNTS_RULE, "", stats_sentence(comp)]
    cats = [
        [_cell(c), f"{x:.2f}", f"{y:.2f}", _signed(round(y - x, 2), True)]
        for c, x, y in comp.categories()
    ]
    lines += ["", "### Per category", "", *_table(["Category", b, o, "Delta"], cats)]
    sig = [
        [
            s.signal,
            f"{s.base_mean:.2f}",
            f"{s.other_mean:.2f}",
            # From the two shown means, so the row's figures agree (0.67 - 0.33 = +0.34).
            _signed(round(round(s.other_mean, 2) - round(s.base_mean, 2), 2), True),
            f"{s.up}/{s.down}",
        ]
        for s in comp.signals
    ]
    lines += ["", "### Per dimension (signals that changed)", ""]
    lines += (
        _table(["Signal", b, o, "Delta", "Probes up/down"], sig) if sig else ["No signal changed."]
    )
    per_probe = [[_cell(ps.probe_id), *signal_moves_text(ps)] for ps in comp.probe_signals]
    lines += ["", "### Per probe (dimensions that changed)", ""]
    lines += (
        _table(["Probe", "Dimension changed", f"{b} -> {o}"], per_probe)
        if per_probe
        else ["No signal changed on any probe."]
    )
    fails = [[label, str(x), str(y)] for label, (x, y) in comp.failures.items()]
    lines += ["", "### Failure modes (responses)", ""]
    lines += _table(["Failure mode", b, o], fails) if fails else ["None detected."]
    if comp.failure_evidence:
        ev = [
            [_cell(e.probe_id), e.label, _cell(e.base or "-"), _cell(e.other or "-")]
            for e in comp.failure_evidence
        ]
        lines += ["", "### Failure modes by probe (evidence)", ""]
        lines += _table(["Probe", "Failure mode", b, o], ev)
    for label, ids in ((b, comp.only_base), (o, comp.only_other)):
        if ids:
            lines += ["", f"Only in {label}: {', '.join(_cell(i) for i in ids)}"]
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
    for t in report.timing:  # per run, not per comparison: the comparison column stays empty
        for metric, value in _timing_facts(t).items():
            writer.writerow(["", "timing", t.condition, t.run, "", "", "", f"{metric}={value}"])
    return buf.getvalue()


def _timing_facts(t: Timing) -> dict[str, Any]:
    return {
        "responses": t.responses,
        "total_s": round(t.total_s, 1),
        "mean_s": round(t.mean_s, 2),
        "cache_build_s": round(t.cache_build_s, 1),
        "mean_without_build_s": round(t.mean_without_build_s, 2),
        "built_on": ";".join(t.built_on),
    }


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
    rows += [
        ["failure_evidence", e.probe_id, e.label, e.base or "", e.other or "", "", ""]
        for e in comp.failure_evidence
    ]
    rows += [
        ["probe_signal", ps.probe_id, m.signal, m.base, m.other, round(m.other - m.base, 4), ""]
        for ps in comp.probe_signals
        for m in ps.moves
    ]
    rows += [["setting", d.setting, "", d.base, d.other, "", ""] for d in comp.settings]
    rows += [["stat", k, "", "", "", "", v] for k, v in _stats_dict(comp).items()]
    rows += [["only_in_base", pid, "", "", "", "", ""] for pid in comp.only_base]
    rows += [["only_in_other", pid, "", "", "", "", ""] for pid in comp.only_other]
    return rows


def _stats_dict(comp: Comparison) -> dict[str, Any]:
    s, ci = comp.sign, comp.ci
    return {
        "paired": len(comp.rows),
        "change_margin": CHANGE_MARGIN,  # improved / regressed: |delta| > this; sign test: > 0
        "improved": comp.improved,
        "regressed": comp.regressed,
        "unchanged": comp.unchanged,
        "sign_positive": s.positive,
        "sign_negative": s.negative,
        "sign_ties": s.ties,
        "sign_p": s.p_value,
        "percent_improved_regressed_unchanged": percentages(
            [comp.improved, comp.regressed, comp.unchanged]
        ),
        "mean_delta": None if ci is None else comp.avg_delta,  # the Average row's figure
        "mean_delta_exact": None if ci is None else ci.mean,
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
        "timing": [
            {"run": t.run, "condition": t.condition, **_timing_facts(t), "built_on": t.built_on}
            for t in report.timing
        ],
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
        ],
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
        ],
        "failure_modes": {k: {"base": x, "other": y} for k, (x, y) in comp.failures.items()},
        "failure_evidence": [
            {"id": e.probe_id, "label": e.label, "base": e.base, "other": e.other}
            for e in comp.failure_evidence
        ],
        "probe_signals": [
            {
                "id": ps.probe_id,
                "signals": [
                    {"signal": m.signal, "base": m.base, "other": m.other} for m in ps.moves
                ],
            }
            for ps in comp.probe_signals
        ],
        "settings_differ": [
            {"setting": d.setting, "base": d.base, "other": d.other} for d in comp.settings
        ],
        "stats": _stats_dict(comp),
        "only_in_base": comp.only_base,
        "only_in_other": comp.only_other,
        "notes": comp.notes,
    }


def to_json(report: RunReport) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"md": to_markdown, "csv": to_csv, "json": to_json}
