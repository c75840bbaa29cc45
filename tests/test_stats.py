"""Paired statistics: exact sign test values, seeded bootstrap CI, signal changes, failure counts."""

from __future__ import annotations

import pytest

from lemlab.core.stats import (
    bootstrap_ci,
    failure_counts,
    percentile,
    sign_test,
    signal_changes,
)


def test_sign_test_known_values() -> None:
    # Seed addendum 27B: +2, 0, 0, +2, +2, +8 -> 4 up, 0 down, 2 ties; p = 2 * (1/2)^4 = 0.125
    s = sign_test([2, 0, 0, 2, 2, 8])
    assert (s.positive, s.negative, s.ties, s.n) == (4, 0, 2, 4)
    assert s.p_value == 0.125
    # 9 up, 1 down: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024
    assert sign_test([1] * 9 + [-1]).p_value == 22 / 1024
    # 1B: 0 up, 5 down, 1 tie: p = 2 / 32 = 0.0625
    assert sign_test([-2, -4, -10, -20, 0, -10]).p_value == 0.0625
    # Balanced: p capped at 1
    assert sign_test([1, -1]).p_value == 1.0
    assert sign_test([0, 0]).p_value == 1.0 and sign_test([]).n == 0


def test_sign_test_large_n_stays_exact() -> None:
    # Reference values from SciPy 1.17's scipy.stats.binomtest (two-sided, p=0.5), computed
    # outside this suite; 2**1100 is far beyond a float's range, so the sum must stay in integers.
    assert sign_test([1.0] * 60 + [-1.0] * 41).p_value == pytest.approx(
        0.07275700687752425, rel=1e-9
    )
    assert sign_test([1.0] * 600 + [-1.0] * 500).p_value == pytest.approx(
        0.0028195449914364284, rel=1e-9
    )


def test_bootstrap_known_values() -> None:
    # Two values: resampled means are 0, 0.5, 1 with chances 1/4, 1/2, 1/4, so the 2.5th
    # percentile is 0 and the 97.5th is 1.
    ci = bootstrap_ci([0.0, 1.0])
    assert ci is not None and (ci.mean, ci.low, ci.high) == (0.5, 0.0, 1.0)
    flat = bootstrap_ci([2.5] * 101)
    assert flat is not None and (flat.low, flat.high) == (2.5, 2.5)
    assert bootstrap_ci([]) is None


def test_bootstrap_is_seeded_and_sensible() -> None:
    deltas = [float((i * 7) % 11 - 4) for i in range(101)]
    a, b = bootstrap_ci(deltas), bootstrap_ci(deltas)
    assert a == b  # same seed, same interval
    assert a is not None and a.low < a.mean < a.high
    other = bootstrap_ci(deltas, seed=1)
    assert other is not None and other != a
    assert a.resamples == 2000 and a.level == 0.95


def test_percentile_interpolates() -> None:
    assert percentile([0.0, 10.0], 0.25) == 2.5
    assert percentile([1.0, 2.0, 3.0], 1.0) == 3.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_signal_changes_only_moved_dimensions_biggest_first() -> None:
    pairs = [
        (
            {
                "engagement_depth": 1,
                "creative_form": 2,
                "nuance": 0,
                "metaphor": 1,
                "lek_score": 3.0,
            },
            {
                "engagement_depth": 3,
                "creative_form": 2,
                "nuance": 1,
                "metaphor": 0,
                "lek_score": 9.0,
            },
        ),
        (
            {
                "engagement_depth": 1,
                "creative_form": 2,
                "nuance": 0,
                "metaphor": 0,
                "lek_score": 3.0,
            },
            {
                "engagement_depth": 4,
                "creative_form": 2,
                "nuance": 0,
                "metaphor": 1,
                "lek_score": 9.0,
            },
        ),
    ]
    changes = signal_changes(pairs)
    # creative_form never moved: left out; metaphor moved both ways (mean unchanged): kept.
    assert [(c.signal, c.base_mean, c.other_mean, c.delta, c.up, c.down) for c in changes] == [
        ("engagement_depth", 1.0, 3.5, 2.5, 2, 0),
        ("nuance", 0.0, 0.5, 0.5, 1, 0),
        ("metaphor", 0.5, 0.5, 0.0, 1, 1),
    ]
    # Different scorers: keys missing on one side are not compared.
    assert signal_changes([({"a": 1, "b": 2}, {"b": 3})]) == signal_changes([({"b": 2}, {"b": 3})])


def test_failure_counts_count_responses() -> None:
    counts = failure_counts([["refusal", "refusal"], [], ["collapse", "refusal"]])
    assert counts == {"refusal": 2, "collapse": 1}
