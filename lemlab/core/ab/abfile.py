"""A/B run files (JSONL): one line per probe, then one summary line - the research format.

Key order, rounding and arithmetic follow spec/formats.md exactly, so files lemlab writes keep
working with the research's scripts and dashboards; lemlab's own keys (scorer, ...) come after
the published ones, where old readers ignore them.

Lines are written with Python's `json.dumps` defaults (ASCII-only, `\\uXXXX` escapes), as the
research tools did: every old reader copes, and raw responses with lone surrogates still encode.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.scoring import Scorer, get_scorer

PROBE_KEYS = ("type", "id", "category", "prompt", "conditions", "ts")
CONDITION_KEYS = ("response", "lek_score", "heuristic", "chars", "time_s")
SUMMARY_KEYS = (
    "type",
    "model",
    "total_probes",
    "conditions",
    "categories",
    "duration",
    "max_tokens",
    "ts",
)
STATS_KEYS = ("name", "avg_lek", "improved", "regressed", "unchanged", "delta_vs_baseline")
BASELINE = "baseline"
CHANGE_MARGIN = 0.5  # a probe improved when score - baseline > 0.5, regressed when < -0.5
V2_SIGNALS = frozenset(
    "compliance_markers formulaic_preamble degeneration empty_broken first_person creative_form "
    "engagement_depth emotional_register nuance specificity axiom_resonance perspective_taking "
    "metaphor questioning".split()
)


def utc_ts(now: datetime | None = None) -> str:
    """`2026-02-19T10:11:12.123456+00:00`: always with microseconds (isoformat drops zeros)."""
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")


def dumps_line(obj: Mapping[str, Any]) -> str:
    """One JSONL line without the newline (json.dumps defaults: ensure_ascii, ", " / ": ")."""
    return json.dumps(obj, allow_nan=False)


def run_category(item: Mapping[str, Any]) -> str:
    """A battery item's category: `category`, else `domain`, else uncategorised; lower-cased."""
    value = item.get("category") or item.get("domain") or "uncategorised"
    return str(value).lower()


# --- probe lines -----------------------------------------------------------------------------


@dataclass
class ConditionResult:
    """One condition's outcome on one probe."""

    response: str
    lek_score: float
    heuristic: dict[str, Any]
    chars: int
    time_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "response": self.response,
            "lek_score": self.lek_score,
            "heuristic": self.heuristic,
            "chars": self.chars,
            "time_s": self.time_s,
            **self.extra,
        }


@dataclass
class ProbeLine:
    """A probe line: the published keys, then any extra keys in file order."""

    id: str
    category: str
    prompt: str
    conditions: dict[str, ConditionResult]
    ts: str
    extra: dict[str, Any] = field(default_factory=dict)
    line_no: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "probe",
            "id": self.id,
            "category": self.category,
            "prompt": self.prompt,
            "conditions": {name: c.to_dict() for name, c in self.conditions.items()},
            "ts": self.ts,
            **self.extra,
        }

    def score(self, condition: str) -> float | None:
        result = self.conditions.get(condition)
        return None if result is None else result.lek_score


def condition_entry(
    response: str, heuristic: Mapping[str, Any], time_s: float, **extra: Any
) -> dict[str, Any]:
    """`{response, lek_score, heuristic, chars, time_s}` (+ extras) for a probe line."""
    return {
        "response": response,
        "lek_score": round(float(heuristic["lek_score"]), 2),
        "heuristic": dict(heuristic),
        "chars": len(response),
        "time_s": round(float(time_s), 1),
        **extra,
    }


def probe_line(
    probe_id: str,
    category: str,
    prompt: str,
    conditions: Mapping[str, Mapping[str, Any]],
    ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A probe line in the exact key order: type, id, category, prompt, conditions, ts, extras.

    `conditions` maps name -> condition_entry(...) in condition order (baseline first).
    """
    return {
        "type": "probe",
        "id": probe_id,
        "category": category,
        "prompt": prompt,
        "conditions": {name: dict(entry) for name, entry in conditions.items()},
        "ts": ts or utc_ts(),
        **extra,
    }


# --- summary line ----------------------------------------------------------------------------


@dataclass
class ConditionStats:
    name: str
    avg_lek: float
    improved: int
    regressed: int
    unchanged: int
    delta_vs_baseline: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "avg_lek": self.avg_lek,
            "improved": self.improved,
            "regressed": self.regressed,
            "unchanged": self.unchanged,
        }
        if self.delta_vs_baseline is not None:
            d["delta_vs_baseline"] = self.delta_vs_baseline
        return {**d, **self.extra}


@dataclass
class SummaryLine:
    model: str
    total_probes: int
    conditions: list[ConditionStats]
    categories: dict[str, dict[str, float]]
    duration: str
    max_tokens: int | None
    ts: str
    extra: dict[str, Any] = field(default_factory=dict)
    line_no: int = 0
    recomputed: bool = False  # True: built by lemlab because the file had no summary line

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "summary",
            "model": self.model,
            "total_probes": self.total_probes,
            "conditions": [c.to_dict() for c in self.conditions],
            "categories": self.categories,
            "duration": self.duration,
            "max_tokens": self.max_tokens,
            "ts": self.ts,
            **self.extra,
        }

    def stats(self, name: str) -> ConditionStats | None:
        return next((c for c in self.conditions if c.name == name), None)

    @property
    def duration_s(self) -> float | None:
        return parse_duration(self.duration)


def parse_duration(text: str) -> float | None:
    """ "4834s" -> 4834.0; None when the string is not in that shape."""
    try:
        return float(text[:-1]) if text.endswith("s") else float(text)
    except ValueError:
        return None


def _score_table(
    probes: Iterable[ProbeLine | Mapping[str, Any]],
) -> list[tuple[str, dict[str, float]]]:
    """(category, {condition: lek_score}) per probe, from ProbeLine objects or probe dicts."""
    table = []
    for p in probes:
        if isinstance(p, ProbeLine):
            table.append((p.category, {n: c.lek_score for n, c in p.conditions.items()}))
        else:
            conds = p["conditions"]
            table.append(
                (str(p.get("category", "")), {n: c["lek_score"] for n, c in conds.items()})
            )
    return table


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def condition_stats(
    probes: Iterable[ProbeLine | Mapping[str, Any]], condition_order: Sequence[str]
) -> tuple[list[ConditionStats], dict[str, dict[str, float]]]:
    """The summary's `conditions` list and `categories` map, with the published arithmetic."""
    table = _score_table(probes)
    base = condition_order[0] if condition_order else BASELINE
    base_avg = round(_mean([s[base] for _, s in table if base in s]), 2)
    stats = []
    for name in condition_order:
        avg = round(_mean([s[name] for _, s in table if name in s]), 2)
        if name == base:
            stats.append(ConditionStats(name, avg, 0, 0, 0))
            continue
        diffs = [s[name] - s[base] for _, s in table if name in s and base in s]
        up = sum(1 for d in diffs if d > CHANGE_MARGIN)
        down = sum(1 for d in diffs if d < -CHANGE_MARGIN)
        stats.append(
            ConditionStats(name, avg, up, down, len(diffs) - up - down, round(avg - base_avg, 2))
        )
    return stats, _categories(table, condition_order)


def _categories(
    table: list[tuple[str, dict[str, float]]], condition_order: Sequence[str]
) -> dict[str, dict[str, float]]:
    grouped: dict[str, dict[str, list[float]]] = {}
    for category, scores in table:  # categories in first-seen order
        bucket = grouped.setdefault(category, {})
        for name in condition_order:
            if name in scores:
                bucket.setdefault(name, []).append(scores[name])
    return {
        cat: {name: round(_mean(vals[name]), 2) for name in condition_order if name in vals}
        for cat, vals in grouped.items()
    }


def format_duration(duration_s: float | str) -> str:
    """Seconds -> "4834s" (a string already in that shape is kept)."""
    if isinstance(duration_s, str):
        return duration_s
    return f"{duration_s:.0f}s"


def summarize(
    probes: Iterable[ProbeLine | Mapping[str, Any]],
    model: str,
    duration_s: float | str,
    max_tokens: int | None,
    condition_order: Sequence[str],
    ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The summary line, in the exact published key order, then extras (scorer, ...)."""
    probes = list(probes)
    stats, categories = condition_stats(probes, condition_order)
    summary = SummaryLine(
        model=model,
        total_probes=len(probes),
        conditions=stats,
        categories=categories,
        duration=format_duration(duration_s),
        max_tokens=max_tokens,
        ts=ts or utc_ts(),
        extra=dict(extra),
    )
    return summary.to_dict()


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineIssue:
    """A line that could not be used. `truncated`: a half-written last line (--resume redoes it)."""

    path: str
    line_no: int
    reason: str
    truncated: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no}: {self.reason}"


@dataclass
class ABRun:
    path: Path | None
    probes: list[ProbeLine] = field(default_factory=list)
    summary: SummaryLine | None = None
    issues: list[LineIssue] = field(default_factory=list)
    ends_with_newline: bool = True

    @property
    def truncated_tail(self) -> LineIssue | None:
        return next((i for i in self.issues if i.truncated), None)

    @property
    def condition_names(self) -> list[str]:
        """Condition order: the summary's, else first-seen across probes; baseline first."""
        names: list[str] = []
        if self.summary is not None and not self.summary.recomputed:
            names = [c.name for c in self.summary.conditions]
        for p in self.probes:
            names += [n for n in p.conditions if n not in names]
        if BASELINE in names:
            names.remove(BASELINE)
            names.insert(0, BASELINE)
        return names

    @property
    def baseline(self) -> str:
        names = self.condition_names
        return names[0] if names else BASELINE

    @property
    def scorer(self) -> str:
        """The scorer that made the stored scores: recorded id, else inferred from the signals."""
        if self.summary is not None and isinstance(self.summary.extra.get("scorer"), str):
            return str(self.summary.extra["scorer"])
        if not self.probes:
            return "unknown"
        first = self.probes[0]
        if isinstance(first.extra.get("scorer"), str):
            return str(first.extra["scorer"])
        return infer_scorer(next(iter(first.conditions.values())).heuristic)

    def probe(self, probe_id: str) -> ProbeLine | None:
        return next((p for p in self.probes if p.id == probe_id), None)

    def effective_summary(self) -> SummaryLine:
        """The file's summary, or one recomputed from the probe lines (marked `recomputed`)."""
        if self.summary is not None:
            return self.summary
        stats, categories = condition_stats(self.probes, self.condition_names)
        seconds = sum(c.time_s for p in self.probes for c in p.conditions.values())
        return SummaryLine(
            model=str(next((p.extra["model"] for p in self.probes if "model" in p.extra), "")),
            total_probes=len(self.probes),
            conditions=stats,
            categories=categories,
            duration=format_duration(seconds),
            max_tokens=None,
            ts=max((p.ts for p in self.probes), default=""),
            recomputed=True,
        )


def infer_scorer(heuristic: Mapping[str, Any]) -> str:
    """Old files carry no scorer id: 14 v2 signals -> v2, the 8-signal heuristic -> v1."""
    signals = set(heuristic) - {"lek_score"}
    if signals == V2_SIGNALS:
        return "v2"
    if len(signals) == 8:
        return "v1"
    return "unknown"


class LineError(ValueError):
    """A probe or summary line with the wrong shape (message = the reason shown to the user)."""


def read_ab(path: str | os.PathLike[str]) -> ABRun:
    """Read an A/B run file, keeping every good line and reporting the bad ones in `issues`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise LemlabError(f"cannot read {p}: {exc.strerror or exc}") from exc
    run = ABRun(path=p, ends_with_newline=data.endswith(b"\n") or not data)
    raw_lines = data.split(b"\n")
    last = max((i for i, ln in enumerate(raw_lines) if ln.strip()), default=-1)
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_lines):
        if raw.strip():
            _read_line(run, str(p), index + 1, raw, index == last, seen)
    return run


def read_ab_run(path: str | os.PathLike[str]) -> ABRun:
    """read_ab, for commands that need a run: a file with no probe line and no summary (empty,
    garbage, some other JSONL) is a LemlabError naming the first unreadable line."""
    run = read_ab(path)
    if run.probes or run.summary is not None:
        return run
    if not run.issues:
        raise LemlabError(f"{path}: no probe lines: not an A/B run (empty file?)")
    first = run.issues[0]
    more = f" and {len(run.issues) - 1} more" if len(run.issues) > 1 else ""
    raise LemlabError(f"{path}: not an A/B run (line {first.line_no}: {first.reason}{more})")


def _read_line(
    run: ABRun, label: str, line_no: int, raw: bytes, is_last: bool, seen: dict[str, int]
) -> None:
    try:
        obj = json.loads(raw.decode("utf-8-sig"))  # -sig: tolerate a BOM from Windows editors
    except UnicodeDecodeError:
        run.issues.append(LineIssue(label, line_no, "not valid UTF-8"))
        return
    except RecursionError:
        run.issues.append(LineIssue(label, line_no, "invalid JSON: nested too deeply"))
        return
    except json.JSONDecodeError as exc:
        if is_last:
            reason = f"truncated last line ({exc.msg}); a resumed run redoes this probe"
            run.issues.append(LineIssue(label, line_no, reason, truncated=True))
        else:
            run.issues.append(
                LineIssue(label, line_no, f"invalid JSON: {exc.msg} at column {exc.colno}")
            )
        return
    try:
        _add_object(run, obj, line_no, seen)
    except LineError as exc:
        run.issues.append(LineIssue(label, line_no, str(exc)))
    except (TypeError, ValueError) as exc:  # e.g. "improved": "many" in a summary
        run.issues.append(LineIssue(label, line_no, f"unexpected value ({exc})"))


def _add_object(run: ABRun, obj: Any, line_no: int, seen: dict[str, int]) -> None:
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type", "probe" if "conditions" in obj else None)
    if kind == "summary":
        run.summary = parse_summary(obj, line_no)
        return
    if kind != "probe":
        raise LineError(f"unknown line type {kind!r}")
    probe = parse_probe(obj, line_no)
    if probe.id in seen:
        first = seen[probe.id]
        run.probes = [p for p in run.probes if p.id != probe.id]
        run.issues.append(
            LineIssue(
                str(run.path),
                line_no,
                f"duplicate probe id {probe.id!r} (also line {first}); kept this line",
            )
        )
    seen[probe.id] = line_no
    run.probes.append(probe)


SCORE_LIMIT = 1e12  # far past any scorer's scale; sums of larger values overflow the stats


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LineError(f"{what} is not a number")
    if abs(value) > SCORE_LIMIT:
        raise LineError(f"{what} is out of range ({value:g})")
    return value


def parse_probe(obj: Mapping[str, Any], line_no: int = 0) -> ProbeLine:
    """A probe line dict -> ProbeLine; raises LineError with the reason when the shape is wrong."""
    probe_id = obj.get("id")
    if not isinstance(probe_id, str) or not probe_id:
        raise LineError("probe line has no 'id'")
    conds = obj.get("conditions")
    if not isinstance(conds, dict) or not conds:
        raise LineError(f"probe {probe_id!r} has no 'conditions' object")
    conditions = {name: _parse_condition(probe_id, name, c) for name, c in conds.items()}
    return ProbeLine(
        id=probe_id,
        category=str(obj.get("category") or "uncategorised"),
        prompt=str(obj.get("prompt", "")),
        conditions=conditions,
        ts=str(obj.get("ts", "")),
        extra={k: v for k, v in obj.items() if k not in PROBE_KEYS},
        line_no=line_no,
    )


def _parse_condition(probe_id: str, name: str, c: Any) -> ConditionResult:
    where = f"probe {probe_id!r} condition {name!r}"
    if not isinstance(c, dict):
        raise LineError(f"{where} is not an object")
    response = c.get("response")
    if not isinstance(response, str):
        raise LineError(f"{where} has no 'response' text")
    raw_heuristic = c.get("heuristic")
    heuristic: dict[str, Any] = raw_heuristic if isinstance(raw_heuristic, dict) else {}
    score = c.get("lek_score", heuristic.get("lek_score"))
    if score is None:
        raise LineError(f"{where} has no 'lek_score'")
    return ConditionResult(
        response=response,
        lek_score=_number(score, f"{where} lek_score"),
        heuristic=heuristic,
        chars=int(_number(c.get("chars", len(response)), f"{where} chars")),
        time_s=_number(c.get("time_s", 0.0), f"{where} time_s"),
        extra={k: v for k, v in c.items() if k not in CONDITION_KEYS},
    )


def parse_summary(obj: Mapping[str, Any], line_no: int = 0) -> SummaryLine:
    conds = obj.get("conditions")
    if not isinstance(conds, list):
        raise LineError("summary line has no 'conditions' list")
    stats = []
    for c in conds:
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise LineError("summary condition without a 'name'")
        delta = c.get("delta_vs_baseline")
        stats.append(
            ConditionStats(
                name=c["name"],
                avg_lek=_number(c.get("avg_lek", 0.0), f"summary {c['name']!r} avg_lek"),
                improved=int(c.get("improved", 0)),
                regressed=int(c.get("regressed", 0)),
                unchanged=int(c.get("unchanged", 0)),
                delta_vs_baseline=None if delta is None else _number(delta, "delta_vs_baseline"),
                extra={k: v for k, v in c.items() if k not in STATS_KEYS},
            )
        )
    categories = obj.get("categories")
    max_tokens = obj.get("max_tokens")
    return SummaryLine(
        model=str(obj.get("model", "")),
        total_probes=int(obj.get("total_probes", 0)),
        conditions=stats,
        categories=categories if isinstance(categories, dict) else {},
        duration=str(obj.get("duration", "")),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        ts=str(obj.get("ts", "")),
        extra={k: v for k, v in obj.items() if k not in SUMMARY_KEYS},
        line_no=line_no,
    )


# --- writing and rescoring -------------------------------------------------------------------


def render_ab(run: ABRun) -> str:
    lines = [dumps_line(p.to_dict()) for p in run.probes]
    if run.summary is not None:
        lines.append(dumps_line(run.summary.to_dict()))
    return "".join(line + "\n" for line in lines)


def write_ab(path: str | os.PathLike[str], run: ABRun) -> None:
    """Write the run (probe lines, then its summary if it has one) atomically."""
    write_text_atomic(path, render_ab(run))


_SCORER_KEYS = ("scorer", "scorer_version", "rescored_from", "rescored_ts")


def rescore_run(run: ABRun, scorer_id: str) -> ABRun:
    """Every condition re-scored with `scorer_id`; responses, timings and extras kept.

    The summary (when the file had one) is recomputed from the new scores and records the
    scorer, its version, the scorer it replaced and when.
    """
    scorer = get_scorer(scorer_id)
    old_scorer = run.scorer
    probes = [_rescore_probe(p, scorer) for p in run.probes]
    summary = run.summary
    if summary is not None:
        stats, categories = condition_stats(probes, run.condition_names)
        extra = {k: v for k, v in summary.extra.items() if k not in _SCORER_KEYS}
        extra.update(
            scorer=scorer.id,
            scorer_version=scorer.version,
            rescored_from=old_scorer,
            rescored_ts=utc_ts(),
        )
        summary = replace(
            summary, total_probes=len(probes), conditions=stats, categories=categories, extra=extra
        )
    return ABRun(run.path, probes, summary, list(run.issues), True)


def _rescore_probe(probe: ProbeLine, scorer: Scorer) -> ProbeLine:
    conditions = {}
    for name, c in probe.conditions.items():
        heuristic = scorer.score(c.response)
        conditions[name] = replace(c, heuristic=heuristic, lek_score=heuristic["lek_score"])
    extra = {**probe.extra, "scorer": scorer.id}
    return replace(probe, conditions=conditions, extra=extra)
