"""Heuristic response scorers, by stable id. Every stored score carries the id that made it.

`v2` (default) is the published A/B scale; `v2-distill` the self-distillation gate; `v0` the
native-engine score of the seed addendum. They are separate scales: never mix their numbers.
"""

from __future__ import annotations

from lemlab.core.errors import LemlabError
from lemlab.core.scoring.base import Scorer
from lemlab.core.scoring.v0 import SCORER as V0
from lemlab.core.scoring.v2 import SCORER as V2
from lemlab.core.scoring.v2_distill import SCORER as V2_DISTILL

DEFAULT_SCORER = "v2"
SCORERS: dict[str, Scorer] = {s.id: s for s in (V2, V2_DISTILL, V0)}


def get_scorer(scorer_id: str | None = None) -> Scorer:
    """The scorer with this id (default v2); unknown ids raise a one-line LemlabError."""
    key = DEFAULT_SCORER if scorer_id is None else scorer_id
    try:
        return SCORERS[key]
    except KeyError:
        valid = ", ".join(SCORERS)
        raise LemlabError(f"unknown scorer {key!r} (valid: {valid})") from None


__all__ = ["DEFAULT_SCORER", "SCORERS", "Scorer", "get_scorer"]
