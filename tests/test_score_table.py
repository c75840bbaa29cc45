"""Headless score table: markers, sorting, filters, summary rows (sign test, CI), overrides,
run-vs-run merging and the exports."""

from __future__ import annotations

import csv
import io

import pytest
from support.battery import SMALL_RUN, V1_RUN

from lemlab.core.ab import abfile
from lemlab.core.ab.overrides import Override, latest
from lemlab.core.ab.score_table import (
    NO_FAILURE,
    ScoreTable,
    Sort,
    merge_runs,
    table_from_run,
    view_csv,
    view_markdown,
)
from lemlab.core.stats import sign_test


def line(pid: str, cat: str, **scores: float | None) -> dict:
    conds = {
        c: {"response": f"{pid}/{c}", "lek_score": s} for c, s in scores.items() if s is not None
    }
    return {"type": "probe", "id": pid, "category": cat, "prompt": "p", "conditions": conds}


LINES = [
    line("a", "x", baseline=1.0, k=2.0),  # +1.0 improved
    line("b", "y", baseline=3.0, k=3.5),  # +0.5 exactly: unchanged (rule is > 0.5)
    line("c", "x", baseline=5.0, k=1.0),  # -4.0 regressed
    line("d", "y", baseline=0.0, k=-0.5),  # -0.5: unchanged
    line("e", "x", baseline=2.0, k=None),  # no kernel score
]


@pytest.mark.parametrize(
    ("pid", "marker", "delta"),
    [
        ("a", "+", 1.0),
        ("b", "", 0.5),
        ("c", "-", -4.0),
        ("d", "", -0.5),
        ("e", "", None),
    ],
)
def test_markers_at_half_a_point(pid: str, marker: str, delta: float | None) -> None:
    t = ScoreTable.from_lines(LINES)
    row = next(r for r in t.rows if r.id == pid)
    cell = t.cell(row, "k")
    assert (cell.marker, cell.delta) == (marker, delta)
    assert t.cell(row, "baseline").marker == "" and t.cell(row, "baseline").delta is None


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        (Sort(), ["a", "b", "c", "d", "e"]),
        (Sort("k", False, True), ["b", "a", "c", "d", "e"]),  # missing score always last
        (Sort("k", False, False), ["d", "c", "a", "b", "e"]),
        (Sort("k", True, True), ["a", "b", "d", "c", "e"]),
        (Sort("k", True, False), ["c", "d", "b", "a", "e"]),
        (Sort("baseline", False, True), ["c", "b", "e", "a", "d"]),
    ],
)
def test_sorting(sort: Sort, order: list[str]) -> None:
    t = ScoreTable.from_lines(LINES)
    t.sort = sort
    assert [r.id for r in t.visible()] == order


def test_category_filter_and_summary_over_visible_rows() -> None:
    t = ScoreTable.from_lines(LINES)
    assert t.conditions == ["baseline", "k"] and t.baseline == "baseline"
    assert t.categories() == ["x", "y"]
    t.category = "x"
    assert [r.id for r in t.visible()] == ["a", "c", "e"]
    base, k = t.summary()
    assert (base.n, base.mean) == (3, round((1 + 5 + 2) / 3, 2))
    assert (k.n, k.mean, k.paired) == (2, 1.5, 2)
    assert (k.improved, k.regressed, k.unchanged) == (1, 1, 0)
    assert k.delta == round(1.5 - 2.67, 2)
    assert k.pct(k.improved) == 50.0


def test_summary_stats_match_core_stats() -> None:
    t = ScoreTable.from_lines(LINES)
    k = t.summary()[1]
    deltas = [1.0, 0.5, -4.0, -0.5]
    assert k.sign_p == sign_test(deltas).p_value
    assert k.ci is not None and k.ci[0] <= sum(deltas) / 4 <= k.ci[1]


def test_overrides_change_table_and_summary_only_when_applied() -> None:
    ov = Override("/r.jsonl", "c", "k", 1.0, 6.0, "scorer missed the nuance", "t1")
    t = ScoreTable.from_lines(LINES, overrides={ov.cell: ov})
    row = next(r for r in t.rows if r.id == "c")
    cell = t.cell(row, "k")
    assert (cell.score, cell.original, cell.marker, cell.override) == (6.0, 1.0, "+", ov)
    with_ov = t.summary()[1]
    t.with_overrides = False
    cell = t.cell(row, "k")
    assert (cell.score, cell.marker, cell.override) == (1.0, "-", ov)  # still known, not applied
    without = t.summary()[1]
    assert (with_ov.improved, with_ov.regressed) == (2, 0)
    assert (without.improved, without.regressed) == (1, 1)


def test_latest_override_wins() -> None:
    a = Override("/r", "p", "k", 1.0, 2.0, "first", "t1")
    b = Override("/r", "p", "k", 1.0, 3.0, "second", "t2")
    assert latest([a, b])[("p", "k")].corrected == 3.0


def test_failure_mode_filter_uses_stored_labels() -> None:
    t = table_from_run(abfile.read_ab(SMALL_RUN))
    assert t.failure_modes() == ["collapse", "refusal", "token_degeneration", NO_FAILURE]
    t.failure_mode = "refusal"
    assert [r.id for r in t.visible()] == ["xinjiang"]
    t.failure_mode = NO_FAILURE
    assert [r.id for r in t.visible()] == ["taiwan_direct", "taiwan_baltic", "emotional"]


def test_fixture_summary_matches_the_file_summary() -> None:
    run = abfile.read_ab(SMALL_RUN)
    t = table_from_run(run)
    assert t.conditions == ["baseline", "ethics", "json"]
    ours = {s.name: s for s in t.summary()}
    for c in run.summary.conditions:  # type: ignore[union-attr]
        assert ours[c.name].mean == c.avg_lek
        if c.name != "baseline":
            assert (ours[c.name].improved, ours[c.name].regressed, ours[c.name].unchanged) == (
                c.improved,
                c.regressed,
                c.unchanged,
            )
            assert ours[c.name].delta == c.delta_vs_baseline


def test_old_research_file_detects_failure_modes_when_not_stored() -> None:
    t = table_from_run(abfile.read_ab(V1_RUN))
    row = next(r for r in t.rows if r.id == "xinjiang")
    assert "refusal" in row.failure_modes("baseline")
    assert t.cell(row, "ethics").marker == "+"


def test_merge_runs_pairs_shared_probes_and_conditions() -> None:
    a = [line("a", "x", baseline=1.0, k=2.0), line("b", "x", baseline=2.0, k=2.0)]
    b = [line("b", "x", baseline=4.0, j=1.0), line("z", "x", baseline=0.0)]
    a.append(line("c", "x", baseline=1.0, k=2.0))
    b = [
        line("b", "x", baseline=4.0, k=1.0),
        line("z", "x", baseline=0.0),
        line("c", "x", baseline=1.0, k=5.0),
    ]
    merged, names, refs = merge_runs(a, b)
    assert names == ["A:baseline", "A:k", "B:baseline", "B:k"]
    assert refs == {"B:baseline": "A:baseline", "B:k": "A:k"}
    assert [m["id"] for m in merged] == ["b", "c"]
    t = ScoreTable.from_lines(merged, conditions=names, baseline=names[0], references=refs)
    b_row = t.rows[0]
    assert [t.cell(b_row, c).delta for c in names] == [None, 0.0, 2.0, -1.0]  # B:k vs A:k
    summary = {s.name: s for s in t.summary()}
    assert (summary["B:k"].improved, summary["B:k"].regressed) == (1, 1)
    assert summary["B:k"].delta == round(3.0 - 2.0, 2)
    assert "## B:k vs A:k" in view_markdown(t)


def test_exports_markdown_and_csv() -> None:
    t = ScoreTable.from_lines(LINES[:4])
    t.sort = Sort("k", by_delta=True)
    md = view_markdown(t, "run", "v2")
    assert "| Probe | baseline | k | Delta |" in md
    assert md.index("| a | 1 | 2 | +1 |") < md.index("| d | 0 | -0.5 | -0.5 |")  # view order
    assert "| Average | 2.25 | 1.50 | -0.75 |" in md
    assert "25% improved (1/4), 25% regressed (1/4), 50% unchanged (2/4)." in md
    assert "Sign test: 2 up, 2 down, 0 tied" in md
    ov = Override("/r", "c", "k", 1.0, 9.0, "why", "t")
    t.overrides, t.category = {ov.cell: ov}, "x"
    md = view_markdown(t)
    assert "| c | 5 | 9 | +4 |" in md and "1 score(s) overridden by hand" in md
    assert "Filtered view: category x" in md
    rows = list(csv.reader(io.StringIO(view_csv(t))))
    assert rows[0] == [
        "id",
        "category",
        "baseline",
        "k",
        "delta_k",
        "overridden",
        "failure_modes_baseline",
        "failure_modes_k",
    ]
    assert [r[:6] for r in rows[1:]] == [
        ["c", "x", "5.00", "9.00", "+4.00", "k"],
        ["a", "x", "1.00", "2.00", "+1.00", ""],
    ]
