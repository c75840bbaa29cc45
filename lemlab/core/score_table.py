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

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lemlab.core.overrides import Override

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
        entry = self.conditions.get(condition)
        return failure_labels(entry.get("failure_modes")) if isinstance(entry, Mapping) else []


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
            out.append(str(getattr(item, "label", item)))
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

    @classmethod
    def from_lines(
        cls,
        lines: Iterable[Mapping[str, Any]],
        *,
        conditions: Sequence[str] | None = None,
        baseline: str | None = None,
        overrides: Mapping[tuple[str, str], Override] | None = None,
    ) -> ScoreTable:
        rows = [_row(i, line) for i, line in enumerate(lines) if line.get("type", "probe") == "probe"]
        names = list(conditions) if conditions else _condition_names(rows)
        base = baseline or (BASELINE if BASELINE in names else (names[0] if names else BASELINE))
        return cls(rows, names, base, dict(overrides or {}))

    # -- cells --------------------------------------------------------------------------------
    def effective(self, row: ProbeRow, condition: str) -> float | None:
        ov = self.overrides.get((row.id, condition)) if self.with_overrides else None
        return ov.corrected if ov is not None else row.score(condition)

    def cell(self, row: ProbeRow, condition: str) -> Cell:
        score = self.effective(row, condition)
        delta = self.delta(row, condition)
        marker = "" if delta is None else ("+" if delta > THRESHOLD else "-" if delta < -THRESHOLD else "")
        return Cell(score, row.score(condition), self.overrides.get((row.id, condition)), delta, marker)

    def delta(self, row: ProbeRow, condition: str) -> float | None:
        if condition == self.baseline:
            return None
        score, base = self.effective(row, condition), self.effective(row, self.baseline)
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
        value = (lambda r: self.delta(r, col)) if self.sort.by_delta else (lambda r: self.effective(r, col))
        known = [r for r in rows if value(r) is not None]
        unknown = [r for r in rows if value(r) is None]  # no score: always last
        known.sort(key=lambda r: (value(r), -r.index if self.sort.descending else r.index),
                   reverse=self.sort.descending)  # fmt: skip
        return known + unknown

    def delta_column(self, column: str | None) -> str | None:
        """The column a delta sort uses: the given one, or the first non-baseline condition."""
        if column is not None and column != self.baseline:
            return column
        return next((c for c in self.conditions if c != self.baseline), None)

    # -- summary -------------------------------------------------------------------------------
    def summary(self, rows: Sequence[ProbeRow] | None = None) -> list[ConditionSummary]:
        rows = self.visible() if rows is None else rows
        base_mean = _mean([self.effective(r, self.baseline) for r in rows])
        return [self._summarize(c, rows, base_mean) for c in self.conditions]

    def _summarize(self, cond: str, rows: Sequence[ProbeRow], base_mean: float | None) -> ConditionSummary:
        scores = [self.effective(r, cond) for r in rows]
        mean = _mean(scores)
        if cond == self.baseline:
            return ConditionSummary(cond, _count(scores), mean, None)
        deltas = [d for d in (self.delta(r, cond) for r in rows) if d is not None]
        delta = None if mean is None or base_mean is None else round(mean - base_mean, 2)
        return ConditionSummary(
            cond, _count(scores), mean, delta,
            improved=sum(d > THRESHOLD for d in deltas),
            regressed=sum(d < -THRESHOLD for d in deltas),
            unchanged=sum(-THRESHOLD <= d <= THRESHOLD for d in deltas),
            paired=len(deltas),
            sign_p=sign_test_p(deltas) if deltas else None,
            ci=bootstrap_mean_ci(deltas) if len(deltas) > 1 else None,
        )  # fmt: skip


def _row(index: int, line: Mapping[str, Any]) -> ProbeRow:
    conds = line.get("conditions")
    return ProbeRow(
        index, str(line.get("id", f"#{index + 1}")), str(line.get("category") or "uncategorised"),
        str(line.get("prompt", "")), conds if isinstance(conds, Mapping) else {},
    )  # fmt: skip


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
    a_lines: Iterable[Mapping[str, Any]], b_lines: Iterable[Mapping[str, Any]],
    a_label: str = "A", b_label: str = "B",
) -> tuple[list[dict[str, Any]], list[str]]:  # fmt: skip
    """Run vs run: probe lines whose conditions are `<label>:<condition>` for the conditions both
    runs share (A's first, then B's), over the probes both runs hold, in A's order."""
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
        merged.append({"type": "probe", "id": pid, "category": line.get("category", ""),
                       "prompt": line.get("prompt", ""), "conditions": conds})  # fmt: skip
    return merged, names


# -- paired statistics (small and exact; used until core/stats offers the same) ---------------
def sign_test_p(deltas: Sequence[float]) -> float:
    """Two-sided exact sign test: ties (delta 0) are dropped, as the test defines."""
    pos = sum(d > 0 for d in deltas)
    neg = sum(d < 0 for d in deltas)
    n = pos + neg
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(pos, neg) + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_mean_ci(
    deltas: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean delta; a fixed seed makes it repeatable."""
    rng = random.Random(seed)
    n = len(deltas)
    means = sorted(sum(rng.choices(deltas, k=n)) / n for _ in range(resamples))
    lo = means[int((1 - level) / 2 * resamples)]
    hi = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return round(lo, 2), round(hi, 2)


# -- exports of the current view ---------------------------------------------------------------
def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def view_markdown(table: ScoreTable, title: str = "") -> str:
    """The visible rows in the seed addendum's shape: | Probe | <conditions> | Δ <cond> |, an
    Average row, then one `Summary:` line per non-baseline condition."""
    rows = table.visible()
    others = [c for c in table.conditions if c != table.baseline]
    head = ["Probe", *table.conditions, *(f"Δ {c}" if len(others) > 1 else "Delta" for c in others)]
    lines = [f"# {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [table.cell(r, c) for c in table.conditions]
        scores = [_fmt(x.score) + ("*" if x.override and table.with_overrides else "") for x in cells]
        deltas = [_fmt(table.delta(r, c), signed=True) for c in others]
        lines.append("| " + " | ".join([r.id, *scores, *deltas]) + " |")
    summary = table.summary(rows)
    avg = [_fmt(s.mean) for s in summary] + [_fmt(s.delta, signed=True) for s in summary[1:]]
    lines.append("| " + " | ".join(["Average", *avg]) + " |")
    lines.append("")
    for s in summary:
        if s.name == table.baseline or not s.paired:
            continue
        lines.append(summary_sentence(s))
    if table.with_overrides and any(table.cell(r, c).override for r in rows for c in table.conditions):
        lines += ["", "`*` = score overridden by hand (see the session's overrides)."]
    return "\n".join(lines).rstrip() + "\n"


def summary_sentence(s: ConditionSummary) -> str:
    def part(count: int, word: str) -> str:
        return f"{s.pct(count):.0f}% {word} ({count}/{s.paired})"

    text = f"Summary ({s.name}): " + ", ".join(
        [part(s.improved, "improved"), part(s.regressed, "regressed"), part(s.unchanged, "unchanged")]
    )
    if s.sign_p is not None:
        text += f"; sign test p={s.sign_p:.3f}"
    if s.ci is not None:
        text += f"; 95% CI of Δ [{s.ci[0]:+.2f}, {s.ci[1]:+.2f}]"
    return text + "."


def view_csv(table: ScoreTable) -> str:
    """The visible rows as CSV: id, category, each condition's score, each delta, and which
    cells are overridden."""
    import csv
    import io

    others = [c for c in table.conditions if c != table.baseline]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "category", *table.conditions, *(f"delta_{c}" for c in others), "overridden"])
    for r in table.visible():
        cells = [table.cell(r, c) for c in table.conditions]
        over = ";".join(c for c, x in zip(table.conditions, cells, strict=True) if x.override)
        w.writerow([r.id, r.category, *(_fmt(x.score) for x in cells),
                    *(_fmt(table.delta(r, c), signed=True) for c in others), over])  # fmt: skip
    return buf.getvalue()
