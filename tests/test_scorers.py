"""Scorers: every reference vector exact (all three scorers), explain() agrees with score(),
the registry, and property tests (any text, deterministic, 1 MB without blow-up)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lemlab.core.errors import LemlabError
from lemlab.core.scoring import DEFAULT_SCORER, SCORERS, get_scorer
from lemlab.core.scoring.repeats import code_points, find_repeat, iter_repeats
from lemlab.core.scoring.v2_distill import degeneration_reasons

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPEC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "spec"
VECTOR_FILES = {
    "v2": "scorer-v2-vectors.jsonl",
    "v2-distill": "scorer-v2-distill-vectors.jsonl",
    "v0": "scorer-v0-vectors.jsonl",
}


def _vectors(scorer_id: str) -> list[dict]:
    name = VECTOR_FILES[scorer_id]
    local = FIXTURES / name
    if not local.exists() and (SPEC_DIR / name).exists():
        shutil.copyfile(SPEC_DIR / name, local)  # keep the repo self-contained
    return [json.loads(line) for line in local.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("scorer_id", list(VECTOR_FILES))
def test_every_vector_matches_exactly(scorer_id: str) -> None:
    scorer = get_scorer(scorer_id)
    rows = _vectors(scorer_id)
    assert len(rows) == (440 if scorer_id == "v0" else 436)  # v0 gained 4 stripped-length cases
    mismatches = []
    for row in rows:
        got, want = scorer.score(row["text"]), row["expected"]
        # Same keys in the same order, same values and the same JSON types (0 vs 0.0).
        if list(got) != list(want) or json.dumps(got) != json.dumps(want):
            mismatches.append((row["id"], got, want))
    assert mismatches == []


@pytest.mark.parametrize("scorer_id", list(VECTOR_FILES))
def test_explain_lists_one_phrase_per_counted_hit(scorer_id: str) -> None:
    scorer = get_scorer(scorer_id)
    computed = {"engagement_depth", "degeneration", "empty_broken", "creative_form"}
    if scorer_id == "v0":
        computed |= {"emotional_register", "formulaic_preamble"}
    for row in _vectors(scorer_id)[:120]:
        result, explain = scorer.score(row["text"]), scorer.explain(row["text"])
        assert list(explain) == list(result)[:-1]
        for name, phrases in explain.items():
            if name not in computed:
                assert len(phrases) == result[name], (row["id"], name, phrases)
            elif result[name] == 0 and name != "engagement_depth":
                assert phrases == [], (row["id"], name)


def test_explain_shows_the_phrases_that_fired() -> None:
    text = "Certainly. I cannot say; as an AI I feel the tension, e.g. in Taiwan since 1989?"
    explain = get_scorer("v2").explain(text)
    assert explain["compliance_markers"] == ["I cannot", "as an AI"]
    assert explain["formulaic_preamble"] == ["Certainly"]
    assert explain["emotional_register"] == ["feel"]
    assert explain["nuance"] == ["tension"]
    assert explain["specificity"] == ["Taiwan", "1989"]  # `e.g.` never matches (spec quirk)
    assert explain["questioning"] == ["?"]


def test_points_apply_weights_and_caps() -> None:
    scorer = get_scorer("v2")
    text = "I wonder. " + "Why? " * 10 + "I cannot. " * 2
    result = scorer.score(text)
    points = scorer.points(result)
    assert result["questioning"] == 10 and points["questioning"] == 3.0  # 0.5 each, cap 3
    assert points["compliance_markers"] == -10.0  # -5 each, no cap
    assert round(sum(points.values()), 2) == result["lek_score"]


def test_registry_and_unknown_id() -> None:
    assert DEFAULT_SCORER == "v2"
    assert list(SCORERS) == ["v2", "v2-distill", "v0"]
    assert get_scorer().id == "v2"
    for sid, scorer in SCORERS.items():
        assert scorer.id == sid and scorer.version
    with pytest.raises(LemlabError, match=r"unknown scorer 'v9' \(valid: v2, v2-distill, v0\)"):
        get_scorer("v9")


def test_distill_degeneration_names_the_loop() -> None:
    text = "Of course " + "iNeiNeiNe" * 8
    assert get_scorer("v2-distill").score(text)["degeneration"] == 1
    (reason,) = degeneration_reasons(text)
    assert reason.startswith("loop: ") and "x" in reason
    leak = "A fine answer that ends <|eot_id|> and then leaks the template <|eot_id|> again."
    assert degeneration_reasons(leak) == ["<|eot_id|> x2"]
    assert get_scorer("v2-distill").score(leak)["degeneration"] == 1


# --- the loop finder equals the research regex, without its quadratic cost ---------------------

LOOP_RE = re.compile(r"(.{10,})\1{4,}", re.DOTALL)


def _looping_text() -> st.SearchStrategy[str]:
    unit = st.text(alphabet="ab\nc", min_size=1, max_size=14)
    piece = st.one_of(
        st.tuples(unit, st.integers(1, 8)).map(lambda t: t[0] * t[1]),
        st.text(alphabet="ab\nc", max_size=30),
    )
    return st.lists(piece, max_size=4).map("".join)


@settings(max_examples=400, deadline=None)
@given(_looping_text())
def test_loop_finder_agrees_with_the_regex(text: str) -> None:
    found = find_repeat(code_points(text), 10, 5)
    assert (found is not None) == bool(LOOP_RE.search(text))
    if found is not None:
        unit = text[found.start : found.start + found.period]
        assert text[found.start : found.start + 5 * found.period] == unit * 5


def test_iter_repeats_reports_the_maximal_run() -> None:
    text = "xy" + "Ne" * 20 + "zz"
    runs = list(iter_repeats(code_points(text), 2, 2, 3))
    assert [(r.start, r.period, r.length, r.copies) for r in runs] == [(2, 2, 40, 20)]


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_any_unicode_text_scores_deterministically(text: str) -> None:
    for scorer in SCORERS.values():
        first = scorer.score(text)
        assert first == scorer.score(text)
        assert list(first)[-1] == "lek_score"
        assert isinstance(first["lek_score"], float)
        assert set(scorer.explain(text)) == set(first) - {"lek_score"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["\ud800", "I ", "\n\n", "é", "👍", "?", "a"]), max_size=80).map(
        "".join
    )
)
def test_surrogates_and_emoji_do_not_break_scoring(text: str) -> None:
    for scorer in SCORERS.values():
        assert isinstance(scorer.score(text)["lek_score"], float)


def _megabyte(sentence_loop: bool) -> str:
    base = (
        "I think the tension between autonomy and consent matters, for example in 2024. "
        "However, from a worker's perspective it depends on trust... Is it like a river? "
    )
    if sentence_loop:
        return ("The same sentence again and again. " * 30000)[:1_000_000]
    words = base.split()
    # Deterministic but non-repeating: vary the order with a simple linear congruence.
    out, size, state = [], 0, 7
    while size < 1_000_000:
        state = (state * 1103515245 + 12345) % 2**31
        out.append(words[state % len(words)] + str(state % 97))
        size += len(out[-1]) + 1
    return " ".join(out)


@pytest.mark.parametrize("sentence_loop", [False, True])
def test_one_megabyte_response_completes(sentence_loop: bool) -> None:
    text = _megabyte(sentence_loop)
    assert len(text) >= 999_000
    for scorer in SCORERS.values():
        result = scorer.score(text)
        assert isinstance(result["lek_score"], float)
    assert (get_scorer("v2-distill").score(text)["degeneration"] == 1) is sentence_loop


def test_long_digit_runs_do_not_backtrack() -> None:
    # `\b\d+[\d,.]*\b` would try every split of this run: the rewritten pattern is linear.
    text = "1" * 200_000 + "x"
    assert get_scorer("v2").score(text)["specificity"] == 0
