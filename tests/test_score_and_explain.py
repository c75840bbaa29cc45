"""`Scorer.score_and_explain` (what `lemlab score` uses): one pass that gives exactly score()
and explain(), on every reference vector of every scorer."""

from __future__ import annotations

import json

import pytest
from test_scorers import VECTOR_FILES, _vectors

from lemlab.core.scoring import get_scorer


@pytest.mark.parametrize("scorer_id", list(VECTOR_FILES))
def test_one_pass_equals_score_and_explain(scorer_id: str) -> None:
    scorer = get_scorer(scorer_id)
    rows = _vectors(scorer_id)
    assert len(rows) >= 436
    for row in rows:
        result, explain = scorer.score_and_explain(row["text"])
        assert json.dumps(result) == json.dumps(row["expected"]), row["id"]
        assert explain == scorer.explain(row["text"]), row["id"]
