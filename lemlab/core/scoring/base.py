"""Building blocks shared by the scorers: signals, their points, and the phrases that fired them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

Number = int | float


@dataclass(frozen=True)
class Signal:
    """One scored dimension.

    `count` gives the stored raw value; `evidence` the phrases (or a short reason) behind it;
    `points` turns the raw value into signed points (caps and weights live there).
    """

    name: str
    count: Callable[[str], Number]
    evidence: Callable[[str], list[str]]
    points: Callable[[Number], float]
    penalty: bool = False
    # True when count(text) == len(evidence(text)): one pass gives both (`lemlab score`).
    counts_evidence: bool = False


def word_bounded(items: Iterable[str], flags: int = 0) -> re.Pattern[str]:
    """`\\b(?:a|b|c)\\b`: the whole alternation bounded, items tried in the order given."""
    return re.compile(r"\b(?:" + "|".join(items) + r")\b", flags)


def alternation(items: Iterable[str], flags: int = 0) -> re.Pattern[str]:
    """`(?:a|b|c)` with no boundaries (so `he` matches inside `the`)."""
    return re.compile("(?:" + "|".join(items) + ")", flags)


def capped(per_hit: float, cap: float | None = None) -> Callable[[Number], float]:
    def points(value: Number) -> float:
        raw = value * per_hit
        return raw if cap is None else min(raw, cap)

    return points


def regex_signal(
    name: str, pattern: re.Pattern[str], per_hit: float, cap: float | None = None
) -> Signal:
    """A signal counting non-overlapping matches of one compiled pattern."""
    return Signal(
        name=name,
        count=lambda text: sum(1 for _ in pattern.finditer(text)),
        evidence=lambda text: [m.group(0) for m in pattern.finditer(text)],
        points=capped(per_hit, cap),
        penalty=per_hit < 0,
        counts_evidence=True,
    )


class Scorer:
    """A heuristic response scorer: a fixed, ordered list of signals plus a composite lek_score."""

    id: str = ""
    version: str = ""
    title: str = ""
    scale: str = ""
    signals: tuple[Signal, ...] = ()

    @property
    def signal_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals)

    def score(self, text: str) -> dict[str, Number]:
        """Raw signal values in the published key order, then `lek_score` (2 decimals)."""
        result: dict[str, Number] = {s.name: s.count(text) for s in self.signals}
        result["lek_score"] = self.lek(result)
        return result

    def points(self, result: Mapping[str, Number]) -> dict[str, float]:
        """Signed points each signal contributed to lek_score (weights and caps applied)."""
        # `+ 0.0` turns the -0.0 of an unfired penalty into 0.0.
        return {s.name: float(s.points(result[s.name])) + 0.0 for s in self.signals}

    def lek(self, result: Mapping[str, Number]) -> float:
        # Capped positives first, then penalties: the summation order of the published scorers.
        pts = self.points(result)
        total = 0.0
        for s in self.signals:
            if not s.penalty:
                total += pts[s.name]
        total -= sum(-pts[s.name] for s in self.signals if s.penalty)
        return round(total, 2)

    def explain(self, text: str) -> dict[str, list[str]]:
        """Per signal, the phrases that fired it (or a one-line reason for computed signals)."""
        return {s.name: s.evidence(text) for s in self.signals}

    def score_and_explain(self, text: str) -> tuple[dict[str, Number], dict[str, list[str]]]:
        """score(text) and explain(text) together, matching each pattern once where a signal's
        value is the number of its phrases (half the time of calling both on megabytes)."""
        explain = self.explain(text)
        result: dict[str, Number] = {
            s.name: len(explain[s.name]) if s.counts_evidence else s.count(text)
            for s in self.signals
        }
        result["lek_score"] = self.lek(result)
        return result, explain
