"""Paired statistics for comparing two conditions (or two runs) probe by probe. Pure Python.

The sign test and bootstrap here answer "is this kernel's gain more than noise?" the way eval
users ask for it: exact two-sided p-value, and a seeded (repeatable) 95% CI of the mean delta.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SignTest:
    positive: int
    negative: int
    ties: int
    p_value: float

    @property
    def n(self) -> int:
        return self.positive + self.negative


def sign_test(deltas: Iterable[float]) -> SignTest:
    """Two-sided exact binomial sign test; zero deltas are ties and are dropped."""
    values = list(deltas)
    pos = sum(1 for d in values if d > 0)
    neg = sum(1 for d in values if d < 0)
    n = pos + neg
    if n == 0:
        return SignTest(pos, neg, len(values), 1.0)
    tail = sum(math.comb(n, k) for k in range(min(pos, neg) + 1))
    # Integer arithmetic until the last step keeps the p-value exact for any n.
    p = min(1.0, 2 * tail / 2**n)
    return SignTest(pos, neg, len(values) - n, p)


@dataclass(frozen=True)
class BootstrapCI:
    mean: float
    low: float
    high: float
    level: float
    resamples: int
    seed: int


def bootstrap_ci(
    deltas: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> BootstrapCI | None:
    """Percentile bootstrap CI of the mean paired delta (None for no data).

    Seeded, so the same deltas always give the same interval, in whatever order they come:
    resampling draws by position, so the values are sorted first (the Battery pane and
    `lemlab report` list probes in different orders and must show one interval). Percentiles
    use linear interpolation between order statistics (numpy's default definition).
    """
    n = len(deltas)
    if n == 0:
        return None
    # Scores are stored to 2 decimals, so one path's `a - b` (1.6399999999999988) and another's
    # round(a - b, 2) (1.64) are the same delta: drop the float noise so both draw equal values.
    values = sorted(round(d, 10) for d in deltas)
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples))
    alpha = (1 - level) / 2
    return BootstrapCI(
        mean=math.fsum(values) / n,
        low=percentile(means, alpha),
        high=percentile(means, 1 - alpha),
        level=level,
        resamples=resamples,
        seed=seed,
    )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """q in [0, 1]; linear interpolation between the two nearest ranks."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


@dataclass(frozen=True)
class SignalChange:
    signal: str
    base_mean: float
    other_mean: float
    up: int = 0  # probes where the signal rose
    down: int = 0  # probes where it fell

    @property
    def delta(self) -> float:
        return self.other_mean - self.base_mean


def signal_changes(
    pairs: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
) -> list[SignalChange]:
    """Mean of each heuristic signal under two conditions, over paired (base, other) dicts.

    Only signals both sides carry as numbers, and only those that moved on some probe (a
    signal can move both ways with an unchanged mean); lek_score itself is left out. Largest
    mean change first.
    """
    pairs = list(pairs)
    if not pairs:
        return []
    changes = []
    for name in (k for k in pairs[0][0] if k != "lek_score"):
        values = [(_num(b.get(name)), _num(o.get(name))) for b, o in pairs]
        paired = [(b, o) for b, o in values if b is not None and o is not None]
        if len(paired) != len(values):
            continue  # a side lacks this signal: different scorers, nothing to compare
        change = SignalChange(
            name,
            _mean([b for b, _ in paired]),
            _mean([o for _, o in paired]),
            up=sum(1 for b, o in paired if o > b),
            down=sum(1 for b, o in paired if o < b),
        )
        if change.up or change.down:
            changes.append(change)
    return sorted(changes, key=lambda c: (-abs(c.delta), -(c.up + c.down)))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def failure_counts(labels_per_response: Iterable[Iterable[str]]) -> Counter[str]:
    """How many responses show each failure mode (a response counts once per label)."""
    counts: Counter[str] = Counter()
    for labels in labels_per_response:
        counts.update(set(labels))
    return counts
