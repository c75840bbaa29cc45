"""The Battery tab's score table without the UI: rows = probes, columns = conditions, markers vs
the baseline, sorting, filtering, summary rows with a paired sign test and a bootstrap CI, with or
without the researcher's overrides. Headless: no textual / mlx imports.

Input is the probe lines of an A/B JSONL file as dicts (lemlab's, or the research's v1/v2 files:
only `id`, `category`, `prompt` and `conditions.<name>.lek_score` / `.response` are needed).

    table = ScoreTable(lines, overrides=overrides_for_run(session, path))
    table.sort = Sort("kernel", by_delta=True, descending=True)
    table.category = "identity"
    for row in table.visible(): table.cell(row, "kernel").marker   # "+", "-" or ""
    table.summary()        # one ConditionSummary per condition, over the visible rows
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lemlab.core.ab.overrides import Override
from lemlab.core.ab.report import (
    Comparison,
    ProbeDelta,
    RunReport,
    human_duration,
    run_report,
    settings_diff,
    to_markdown,
)
from lemlab.core.errors import LemlabError
from lemlab.core.scoring.failure_modes import FailureMode, detect
from lemlab.core.stats import bootstrap_ci, failure_counts, sign_test, signal_changes

THRESHOLD = 0.5  # a probe improved when its score minus the baseline's is > 0.5 (research rule)
BASELINE = "baseline"
NO_FAILURE = "none"  # the failure-mode filter value for rows where nothing fired


@dataclass(frozen=True)
class ProbeRow:
    """One probe line. `index` is its position in the file (the default order)."""

    index: int
    id: str
    category: str
    prompt: str
    conditions: Mapping[str, Mapping[str, Any]]

    def score(self, condition: str) -> float | None:
        entry = self.conditions.get(condition)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("lek_score"), int | float):
            return None
        return round(float(entry["lek_score"]), 2)

    def response(self, condition: str) -> str:
        entry = self.conditions.get(condition)
        return str(entry.get("response", "")) if isinstance(entry, Mapping) else ""

    def heuristic(self, condition: str) -> dict[str, Any]:
        entry = self.conditions.get(condition)
        h = entry.get("heuristic") if isinstance(entry, Mapping) else None
        return dict(h) if isinstance(h, Mapping) else {}

    def failure_modes(self, condition: str) -> list[str]:
        """Stored labels; for files written before failure modes existed, detected now."""
        entry = self.conditions.get(condition)
        if not isinstance(entry, Mapping):
            return []
        if "failure_modes" in entry:
            return failure_labels(entry["failure_modes"])
        return list(_detected(str(entry.get("response", "")), self.prompt))

    def failure_evidence(self, condition: str) -> list[tuple[str, str]]:
        """(label, evidence) per failure mode: what the detector saw, so a reader can judge it."""
        entry = self.conditions.get(condition)
        if not isinstance(entry, Mapping):
            return []
        stored = entry.get("failure_modes")
        if stored is None:
            return list(_detected_evidence(str(entry.get("response", "")), self.prompt))
        items = stored if isinstance(stored, list | tuple) else [stored]
        out = []
        for item, label in zip(items, failure_labels(items), strict=True):
            if isinstance(item, FailureMode):
                ev = item.evidence
            else:
                ev = item.get("evidence", "") if isinstance(item, Mapping) else ""  # a bare label
            out.append((label, str(ev or "")))
        return out


@functools.lru_cache(maxsize=4096)
def _detected(text: str, prompt: str) -> tuple[str, ...]:
    return tuple(label for label, _ in _detected_evidence(text, prompt))


@functools.lru_cache(maxsize=4096)
def _detected_evidence(text: str, prompt: str) -> tuple[tuple[str, str], ...]:
    return tuple((m.label, m.evidence) for m in detect(text, prompt))


# Short tags for the score table: a score a failure mode explains must not pass for a plain low
# score. Labels this table does not know get their first letters.
FAILURE_TAGS = {
    "token_degeneration": "DEGEN",
    "collapse": "COLLAPSE",
    "refusal": "REFUSAL",
    "topic_evasion": "EVADE",
}


def failure_tag(labels: Sequence[str]) -> str:
    return "+".join(FAILURE_TAGS.get(x, x[:6].upper()) for x in labels)


def failure_labels(value: Any) -> list[str]:
    """Failure modes as stored by the runner (strings, or dicts / objects with a label)."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            label = next((item[k] for k in ("label", "name", "code", "mode") if k in item), None)
            out.append(str(label if label is not None else item))
        else:
            out.append(item.label if isinstance(item, FailureMode) else str(item))
    return out


@dataclass(frozen=True)
class Cell:
    score: float | None  # what the table shows (the override's value when one applies)
    original: float | None  # the scorer's value
    override: Override | None  # set when an override exists, applied or not
    delta: float | None  # score minus the baseline's (None on the baseline column)
    marker: str  # "+" improved, "-" regressed, "" otherwise


@dataclass(frozen=True)
class Sort:
    """column None = file order; by_delta sorts by that column's delta vs the baseline."""

    column: str | None = None
    by_delta: bool = False
    descending: bool = True

    @property
    def label(self) -> str:
        if self.column is None:
            return "file order"
        arrow = "↓" if self.descending else "↑"
        return f"{'Δ ' if self.by_delta else ''}{self.column} {arrow}"


@dataclass(frozen=True)
class ConditionSummary:
    name: str
    n: int  # probes with a score in this condition
    mean: float | None
    delta: float | None  # rounded mean minus rounded baseline mean (file-format rule)
    improved: int = 0
    regressed: int = 0
    unchanged: int = 0
    paired: int = 0  # probes scored in both this condition and the baseline
    sign_p: float | None = None  # two-sided exact sign test on the paired deltas
    ci: tuple[float, float] | None = None  # 95% bootstrap CI of the mean paired delta

    def pct(self, count: int) -> float:
        return 100.0 * count / self.paired if self.paired else 0.0


@dataclass
class ScoreTable:
    rows: list[ProbeRow]
    conditions: list[str]
    baseline: str
    overrides: dict[tuple[str, str], Override] = field(default_factory=dict)
    with_overrides: bool = True
    sort: Sort = field(default_factory=Sort)
    category: str | None = None
    failure_mode: str | None = None
    # column -> the column its deltas are taken against (default: the baseline); a run-vs-run
    # table compares B:<cond> with A:<cond>
    references: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_lines(
        cls,
        lines: Iterable[Mapping[str, Any]],
        *,
        conditions: Sequence[str] | None = None,
        baseline: str | None = None,
        overrides: Mapping[tuple[str, str], Override] | None = None,
        references: Mapping[str, str] | None = None,
    ) -> ScoreTable:
        rows = [
            _row(i, line) for i, line in enumerate(lines) if line.get("type", "probe") == "probe"
        ]
        names = list(conditions) if conditions else _condition_names(rows)
        base = baseline or (BASELINE if BASELINE in names else (names[0] if names else BASELINE))
        return cls(rows, names, base, dict(overrides or {}), references=dict(references or {}))

    def add_line(self, line: Mapping[str, Any]) -> ProbeRow:
        """Append a probe line (a live run); a line for a probe already present (a row filled
        condition by condition) replaces it in place."""
        pid = str(line.get("id", f"#{len(self.rows) + 1}"))
        at = next((i for i, r in enumerate(self.rows) if r.id == pid), None)
        row = _row(len(self.rows) if at is None else self.rows[at].index, line)
        if at is None:
            self.rows.append(row)
        else:
            self.rows[at] = row
        return row

    # -- cells --------------------------------------------------------------------------------
    def effective(self, row: ProbeRow, condition: str) -> float | None:
        ov = self.overrides.get((row.id, condition)) if self.with_overrides else None
        return ov.corrected if ov is not None else row.score(condition)

    def cell(self, row: ProbeRow, condition: str) -> Cell:
        score = self.effective(row, condition)
        delta = self.delta(row, condition)
        marker = (
            ""
            if delta is None
            else ("+" if delta > THRESHOLD else "-" if delta < -THRESHOLD else "")
        )
        return Cell(
            score, row.score(condition), self.overrides.get((row.id, condition)), delta, marker
        )

    def delta(self, row: ProbeRow, condition: str) -> float | None:
        ref = self.reference(condition)
        if condition == ref:
            return None
        score, base = self.effective(row, condition), self.effective(row, ref)
        return None if score is None or base is None else round(score - base, 2)

    # -- filtering and sorting -----------------------------------------------------------------
    def categories(self) -> list[str]:
        return sorted({r.category for r in self.rows})

    def failure_modes(self) -> list[str]:
        found = {m for r in self.rows for c in self.conditions for m in r.failure_modes(c)}
        return sorted(found) + [NO_FAILURE]

    def _keep(self, row: ProbeRow) -> bool:
        if self.category is not None and row.category != self.category:
            return False
        if self.failure_mode is None:
            return True
        modes = {m for c in self.conditions for m in row.failure_modes(c)}
        return not modes if self.failure_mode == NO_FAILURE else self.failure_mode in modes

    def visible(self) -> list[ProbeRow]:
        rows = [r for r in self.rows if self._keep(r)]
        col = self.sort.column
        if col is None:
            return rows
        value: Callable[[ProbeRow], float | None] = (
            (lambda r: self.delta(r, col))
            if self.sort.by_delta
            else (lambda r: self.effective(r, col))
        )
        known = [r for r in rows if value(r) is not None]
        unknown = [r for r in rows if value(r) is None]  # no score: always last
        known.sort(
            key=lambda r: (value(r), -r.index if self.sort.descending else r.index),
            reverse=self.sort.descending,
        )
        return known + unknown

    def delta_column(self, column: str | None) -> str | None:
        """The column a delta sort uses: the given one, or the first non-baseline condition."""
        if column is not None and column != self.reference(column):
            return column
        return next((c for c in self.conditions if c != self.reference(c)), None)

    def reference(self, condition: str) -> str:
        return self.references.get(condition, self.baseline)

    def failure_counts(
        self, condition: str, rows: Sequence[ProbeRow] | None = None
    ) -> dict[str, int]:
        """Responses of this condition per failure mode, over the rows (default: visible)."""
        out: dict[str, int] = {}
        for r in self.visible() if rows is None else rows:
            for label in dict.fromkeys(r.failure_modes(condition)):
                out[label] = out.get(label, 0) + 1
        return out

    # -- summary -------------------------------------------------------------------------------
    def summary(self, rows: Sequence[ProbeRow] | None = None) -> list[ConditionSummary]:
        rows = self.visible() if rows is None else rows
        return [self._summarize(c, rows) for c in self.conditions]

    def _summarize(self, cond: str, rows: Sequence[ProbeRow]) -> ConditionSummary:
        scores = [self.effective(r, cond) for r in rows]
        mean = _mean(scores)
        ref = self.reference(cond)
        base_mean = _mean([self.effective(r, ref) for r in rows])
        if cond == ref:
            return ConditionSummary(cond, _count(scores), mean, None)
        deltas = [d for d in (self.delta(r, cond) for r in rows) if d is not None]
        delta = None if mean is None or base_mean is None else round(mean - base_mean, 2)
        return ConditionSummary(
            cond,
            _count(scores),
            mean,
            delta,
            improved=sum(d > THRESHOLD for d in deltas),
            regressed=sum(d < -THRESHOLD for d in deltas),
            unchanged=sum(-THRESHOLD <= d <= THRESHOLD for d in deltas),
            paired=len(deltas),
            sign_p=sign_test(deltas).p_value if deltas else None,
            ci=_ci(deltas),
        )


def _ci(deltas: Sequence[float]) -> tuple[float, float] | None:
    # Resampled in sorted order: the interval does not change when the view is re-sorted, and
    # a redraw with the same deltas (sort, new cursor) reuses it instead of resampling again.
    return _ci_sorted(tuple(sorted(deltas)))


@functools.lru_cache(maxsize=256)
def _ci_sorted(deltas: tuple[float, ...]) -> tuple[float, float] | None:
    ci = bootstrap_ci(deltas) if len(deltas) > 1 else None
    return None if ci is None else (round(ci.low, 2), round(ci.high, 2))


def table_from_run(
    run: Any, overrides: Mapping[tuple[str, str], Override] | None = None
) -> ScoreTable:
    """A table for an abfile.ABRun (read_ab): its condition order and baseline."""
    return ScoreTable.from_lines(
        [p.to_dict() for p in run.probes],
        conditions=run.condition_names,
        baseline=run.baseline,
        overrides=overrides,
    )


def _row(index: int, line: Mapping[str, Any]) -> ProbeRow:
    conds = line.get("conditions")
    return ProbeRow(
        index,
        str(line.get("id", f"#{index + 1}")),
        str(line.get("category") or "uncategorised"),
        str(line.get("prompt", "")),
        conds if isinstance(conds, Mapping) else {},
    )


def _condition_names(rows: Sequence[ProbeRow]) -> list[str]:
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r.conditions))
    return list(names)


def _count(values: Sequence[float | None]) -> int:
    return sum(v is not None for v in values)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(round(v, 2) for v in known) / len(known), 2) if known else None


def merge_runs(
    a_lines: Iterable[Mapping[str, Any]],
    b_lines: Iterable[Mapping[str, Any]],
    a_label: str = "A",
    b_label: str = "B",
) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    """Run vs run: probe lines whose conditions are `<label>:<condition>` for the conditions both
    runs share (A's first, then B's), over the probes both runs hold, in A's order; and the
    references: each B column against the same condition in A (A's own against A's first)."""
    a = {str(x["id"]): x for x in a_lines if x.get("type", "probe") == "probe"}
    b = {str(x["id"]): x for x in b_lines if x.get("type", "probe") == "probe"}
    a_conds = _condition_names([_row(0, x) for x in a.values()])
    b_conds = set(_condition_names([_row(0, x) for x in b.values()]))
    shared = [c for c in a_conds if c in b_conds]
    names = [f"{a_label}:{c}" for c in shared] + [f"{b_label}:{c}" for c in shared]
    merged = []
    for pid, line in a.items():
        if pid not in b:
            continue
        conds = {f"{a_label}:{c}": line["conditions"][c] for c in shared}
        conds |= {f"{b_label}:{c}": b[pid]["conditions"][c] for c in shared}
        merged.append(
            {
                "type": "probe",
                "id": pid,
                "category": line.get("category", ""),
                "prompt": line.get("prompt", ""),
                "conditions": conds,
            }
        )
    refs = {f"{b_label}:{c}": f"{a_label}:{c}" for c in shared}
    return merged, names, refs


# -- exports of the current view ---------------------------------------------------------------
def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def compare_notes(a: Any, b: Any, a_label: str = "A", b_label: str = "B") -> list[str]:
    """What a run-vs-run view must say before its numbers: settings that differ between two
    abfile.ABRun (core.report's settings_diff, per shared condition, each difference once),
    and the conditions and probes only one run has (the merged table leaves them out)."""
    a_names, b_names = a.condition_names, b.condition_names
    shared = [c for c in a_names if c in b_names]
    notes: list[str] = []
    seen: dict[tuple[str, str, str], list[str]] = {}
    for cond in shared:
        for d in settings_diff(a, cond, b, cond):
            seen.setdefault((d.setting, d.base, d.other), []).append(cond)
    for (setting, x, y), conds in seen.items():
        where = "" if len(conds) == len(shared) else f" ({', '.join(conds)})"
        notes.append(f"settings differ: {setting} {x} in {a_label} vs {y} in {b_label}{where}")
    for label, mine, theirs in ((a_label, a_names, b_names), (b_label, b_names, a_names)):
        only = [c for c in mine if c not in theirs]
        if only:
            notes.append(f"conditions only in {label} (not compared): {', '.join(only)}")
    a_ids, b_ids = {p.id for p in a.probes}, {p.id for p in b.probes}
    for label, mine, theirs in ((a_label, a.probes, b_ids), (b_label, b.probes, a_ids)):
        only = [p.id for p in mine if p.id not in theirs]
        if only:
            more = f" (+{len(only) - 5})" if len(only) > 5 else ""
            notes.append(
                f"{len(only)} probes only in {label} (not compared): {', '.join(only[:5])}{more}"
            )
    return notes


def _header(runs: Sequence[Any], labels: Sequence[str]) -> dict[str, Any]:
    """Model, duration and the file's own facts, as `lemlab report` gives them for these runs
    (core.report.run_report: one derivation for both)."""
    reports = []
    for run in runs:
        try:
            reports.append(run_report(run))
        except LemlabError:  # a run without a baseline to report on: no header facts
            continue
    if not reports:
        return {}
    if len(reports) == 1:
        r = reports[0]
        return {
            "model": r.model,
            "duration": r.duration,
            "summary_recomputed": r.summary_recomputed,
            "issues": r.issues,
            "timing": r.timing,
        }
    models = [r.model or "unknown" for r in reports]
    model = (
        models[0]
        if len(set(models)) == 1
        else "; ".join(f"{m} ({lb})" for m, lb in zip(models, labels, strict=False))
    )
    # Two durations are no one duration: both, in words (the renderer keeps unparsable text).
    duration = "; ".join(
        f"{human_duration(r.duration)} ({lb})" for r, lb in zip(reports, labels, strict=False)
    )
    return {
        "model": model,
        "duration": duration,
        "summary_recomputed": any(r.summary_recomputed for r in reports),
        "issues": [i for r in reports for i in r.issues],
    }


def view_report(
    table: ScoreTable,
    title: str = "",
    scorer: str = "",
    *,
    runs: Sequence[Any] = (),
    labels: Sequence[str] = ("A", "B"),
    notes: Sequence[str] = (),
) -> Any:
    """The current view (visible rows, in view order, overrides applied when on) as a
    core.report.RunReport: one comparison per non-baseline condition. `runs`: the abfile.ABRun
    the view shows (one, or A and B of a comparison), for the model, duration and the rest of
    the header; `notes` go before each comparison (e.g. settings that differ)."""
    rows = table.visible()
    comps = []
    for cond in (c for c in table.conditions if c != table.reference(c)):
        ref = table.reference(cond)
        pairs = [(r, table.effective(r, ref), table.effective(r, cond)) for r in rows]
        known = [(r, b, o) for r, b, o in pairs if b is not None and o is not None]
        base_f = failure_counts(r.failure_modes(ref) for r, _, _ in known)
        other_f = failure_counts(r.failure_modes(cond) for r, _, _ in known)
        comps.append(
            Comparison(
                title=f"{cond} vs {ref}",
                base_label=ref,
                other_label=cond,
                rows=[ProbeDelta(r.id, r.category, b, o) for r, b, o in known],
                signals=signal_changes((r.heuristic(ref), r.heuristic(cond)) for r, _, _ in known),
                failures={k: (base_f[k], other_f[k]) for k in sorted(set(base_f) | set(other_f))},
                notes=[*notes, *_view_notes(table)],
            )
        )
    header = _header(runs, labels)
    report = RunReport(
        source=title or "battery view",
        model=header.get("model", ""),
        scorer=scorer or "unknown",
        total_probes=len(rows),
        duration=header.get("duration", ""),
        summary_recomputed=bool(header.get("summary_recomputed", False)),
        comparisons=comps,
        issues=list(header.get("issues", [])),
    )
    if "timing" in header:
        report.timing = header["timing"]
    return report


def _view_notes(table: ScoreTable) -> list[str]:
    notes = []
    if table.category or table.failure_mode:
        notes.append(
            f"Filtered view: category {table.category or 'any'}, failure mode "
            f"{table.failure_mode or 'any'}."
        )
    used = [o for o in table.overrides.values() if any(r.id == o.probe_id for r in table.visible())]
    if used and table.with_overrides:
        notes.append(f"{len(used)} score(s) overridden by hand (see the session's overrides).")
    elif used:
        notes.append("Overrides exist but are not applied: these are the scorer's values.")
    return notes


def view_markdown(table: ScoreTable, title: str = "", scorer: str = "", **kw: Any) -> str:
    """The current view in the seed addendum's shapes, rendered by core.report (keywords as
    view_report's)."""
    return to_markdown(view_report(table, title, scorer, **kw))


def view_csv(table: ScoreTable) -> str:
    """The visible rows as CSV: id, category, each condition's score, each delta, which cells
    are overridden, and each condition's failure modes (labels, `;`-separated)."""
    import csv
    import io

    others = [c for c in table.conditions if c != table.reference(c)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "id",
            "category",
            *table.conditions,
            *(f"delta_{c}" for c in others),
            "overridden",
            *(f"failure_modes_{c}" for c in table.conditions),
        ]
    )
    for r in table.visible():
        cells = [table.cell(r, c) for c in table.conditions]
        over = ";".join(c for c, x in zip(table.conditions, cells, strict=True) if x.override)
        w.writerow(
            [
                r.id,
                r.category,
                *(_fmt(x.score) for x in cells),
                *(_fmt(table.delta(r, c), signed=True) for c in others),
                over,
                *(";".join(r.failure_modes(c)) for c in table.conditions),
            ]
        )
    return buf.getvalue()
