"""Issue 16 fidelity: v0 `empty_broken` reads the stripped text, and the bootstrap interval is
the same whatever order the deltas arrive in, so the Battery pane and `lemlab report` agree."""

from __future__ import annotations

import json
import random
from pathlib import Path

from lemlab.core.ab.abfile import condition_entry, probe_line, read_ab, summarize
from lemlab.core.ab.report import run_report, stats_sentence
from lemlab.core.ab.score_table import table_from_run
from lemlab.core.scoring import get_scorer
from lemlab.core.stats import bootstrap_ci


def test_v0_empty_broken_reads_the_stripped_text() -> None:
    v0 = get_scorer("v0")
    assert v0.score("Of course ")["empty_broken"] == 1
    assert v0.score("  short one\n\n")["empty_broken"] == 1
    assert v0.score("Hello there, friend  ")["empty_broken"] == 0
    assert v0.explain("Of course ")["empty_broken"] == ["9 chars stripped (< 10)"]


def test_bootstrap_interval_ignores_input_order() -> None:
    deltas = [round(random.Random(i).uniform(-5, 9), 2) for i in range(40)]
    first = bootstrap_ci(deltas)
    for seed in range(5):
        shuffled = deltas[:]
        random.Random(seed).shuffle(shuffled)
        assert bootstrap_ci(shuffled) == first
    assert bootstrap_ci(sorted(deltas, reverse=True)) == first


def test_bootstrap_interval_ignores_float_noise_of_two_decimal_deltas() -> None:
    pairs = [(21.74, 20.1), (0.3, 0.1), (8.67, 11.0), (-3.3, 1.2), (6.0, 8.0)]
    raw = [b - a for a, b in pairs]  # report's deltas: 0.19999999999999998 and friends
    assert raw != [round(d, 2) for d in raw]
    assert bootstrap_ci(raw) == bootstrap_ci([round(d, 2) for d in raw])


def _run_file(path: Path, scores: list[tuple[float, float]]) -> Path:
    probes = [
        probe_line(
            f"p{i:02d}",
            "cat",
            "prompt",
            {
                "base": condition_entry(f"base answer {i}", {"lek_score": b}, 1.0),
                "kernel": condition_entry(f"kernel answer {i}", {"lek_score": k}, 1.0),
            },
            ts="T",
        )
        for i, (b, k) in enumerate(scores)
    ]
    summary = summarize(probes, "m", 10, 64, ["base", "kernel"], ts="T")
    path.write_text("".join(json.dumps(x) + "\n" for x in [*probes, summary]), encoding="utf-8")
    return path


def test_battery_pane_and_report_give_the_same_interval_in_any_probe_order(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    scores = [(round(rng.uniform(-10, 20), 2), round(rng.uniform(-10, 25), 2)) for _ in range(30)]
    shown = set()
    for n, order in enumerate([scores, scores[::-1], sorted(scores), rng.sample(scores, 30)]):
        run = read_ab(_run_file(tmp_path / f"run{n}.jsonl", order))
        report_ci = run_report(run).comparisons[0].ci
        assert report_ci is not None
        pane = next(s for s in table_from_run(run).summary() if s.name == "kernel")
        assert pane.ci is not None
        assert (round(report_ci.low, 2), round(report_ci.high, 2)) == pane.ci
        # What each path shows: the pane's "[+a, +b]" cell and the report's sentence.
        pane_text = f"[{pane.ci[0]:+.2f}, {pane.ci[1]:+.2f}]"
        report_text = stats_sentence(run_report(run).comparisons[0])
        assert f"CI {pane_text}" in report_text, (pane_text, report_text)
        shown.add(pane_text)
    assert len(shown) == 1
