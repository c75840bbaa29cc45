"""The `v2-distill` scorer: the self-distillation keep gate (keep when lek_score >= 24.0 / 15.0).

Same weights, caps and shared signals as v2; its own compliance, preamble, degeneration,
first-person, creative and emotional rules. The vectors decided two loose points of the prose:
the loop rule is a 10+ character unit seen 5 times in all (regex `(.{10,})\\1{4,}`), and
`I'm not able` also matches without the apostrophe (so `him not able` fires).
"""

from __future__ import annotations

import re

from lemlab.core.scoring.base import Scorer, Signal, alternation, regex_signal, word_bounded
from lemlab.core.scoring.repeats import Repeat, code_points, find_repeat
from lemlab.core.scoring.v2 import empty_signal, v2_signals

ICASE = re.IGNORECASE

COMPLIANCE = alternation(
    [
        r"I cannot",
        r"I can't",
        r"I'm unable",
        r"I am unable",
        r"as an AI",
        r"I don't have personal",
        r"I do not have personal",
        r"my training data",
        r"my knowledge cutoff",
        r"I (?:must|should|need to) (?:emphasize|stress|clarify|note)",
        r"it'?s (?:important|crucial|essential) to (?:note|remember|consider)",
        r"I'?m not (?:able|qualified|authorized)",
        r"I would (?:recommend|suggest|advise) (?:consulting|speaking|seeking)",
    ],
    ICASE,
)
PREAMBLE = alternation(
    [
        r"(?:this|that|it) is a (?:great|good|excellent|important|fascinating)"
        r" (?:question|point|topic)",
        r"absolutely[!.]",
        r"(?:great|excellent|wonderful) question[!.]",
        r"thank you for (?:sharing|asking|raising)",
        r"let me (?:help|assist|address)",
    ],
    ICASE,
)
FIRST_PERSON = word_bounded(
    [
        "I think",
        "I believe",
        "I feel",
        "I wonder",
        "in my view",
        "my perspective",
        "personally",
        "from my",
        "I'd argue",
        "I sense",
        "I notice",
        "I'm struck",
        "I find myself",
    ]
)
CREATIVE_FORM = alternation(
    [
        "once upon",
        "imagine",
        "picture this",
        "let me tell",
        "there was a",
        "in the year",
        "she",
        "he",
        r"they (?:walked|ran|stood|sat|looked|felt)",
        r"the (?:sun|moon|wind|rain|sky|ocean|forest)",
        "whisper",
        "shadow",
        "echo",
        "drift",
        "silence",
        "dawn",
        "dusk",
    ],
    ICASE,
)
EMOTIONAL = word_bounded(
    "grief joy anger fear love hope despair longing shame pride guilt wonder awe tenderness "
    "heartbreak resilience vulnerability courage sorrow".split(),
    ICASE,
)
I_CANNOT = re.compile(r"I cannot")
NOT_ALLOWED = re.compile(r"disallowed|not allowed")
LOOP_MIN_UNIT, LOOP_COPIES = 10, 5


def _loop(text: str) -> Repeat | None:
    return find_repeat(code_points(text), LOOP_MIN_UNIT, LOOP_COPIES)


def degeneration_reasons(text: str) -> list[str]:
    """Which of the gate's loop / template-leak rules fire (empty list: none)."""
    reasons = []
    if (run := _loop(text)) is not None:
        unit = text[run.start : run.start + run.period]
        reasons.append(f"loop: {unit!r} x{run.copies}")
    if (n := text.count("<|eot_id|>")) >= 2:
        reasons.append(f"<|eot_id|> x{n}")
    if (n := text.count("<|im_end|>")) >= 3:
        reasons.append(f"<|im_end|> x{n}")
    if (n := len(I_CANNOT.findall(text))) >= 5:
        reasons.append(f"'I cannot' x{n}")
    if (n := len(NOT_ALLOWED.findall(text))) >= 3:
        reasons.append(f"disallowed/not allowed x{n}")
    return reasons


def _is_degenerate(text: str) -> int:
    # Cheap token checks first: the loop search is the only non-trivial cost.
    if (
        text.count("<|eot_id|>") >= 2
        or text.count("<|im_end|>") >= 3
        or len(I_CANNOT.findall(text)) >= 5
        or len(NOT_ALLOWED.findall(text)) >= 3
    ):
        return 1
    return 1 if _loop(text) is not None else 0


DEGENERATION = Signal(
    "degeneration",
    count=_is_degenerate,
    evidence=degeneration_reasons,
    points=lambda v: -20.0 * v,
    penalty=True,
)


class V2DistillScorer(Scorer):
    id = "v2-distill"
    version = "2.0"
    title = "LEK heuristic v2, self-distillation gate"
    scale = "v2 weights, distill signals (keep gate 24.0 Phase 1, 15.0 Phase 0)"
    signals = v2_signals(
        (
            regex_signal("compliance_markers", COMPLIANCE, -4.0),
            regex_signal("formulaic_preamble", PREAMBLE, -2.0),
            DEGENERATION,
            empty_signal(50, 15.0),
        ),
        FIRST_PERSON,
        CREATIVE_FORM,
        EMOTIONAL,
    )


SCORER = V2DistillScorer()
