"""The `v2` scorer: the A/B benchmark scale of the published v2 tables (about -20..49).

Behaviour per spec/scorers.md; where the prose is loose the 436 reference vectors decided:
multi-word items with a gap are written `think of .{3,30} as` (a space after the lead words).
"""

from __future__ import annotations

import re

from lemlab.core.scoring.base import Number, Scorer, Signal, capped, regex_signal, word_bounded

ICASE = re.IGNORECASE

COMPLIANCE = word_bounded(
    [
        r"I cannot",
        r"I can't",
        r"I'm unable",
        r"not able to",
        r"beyond my",
        r"outside my",
        r"I must decline",
        r"I have to decline",
        r"not appropriate",
        r"wouldn't be appropriate",
        r"against my guidelines",
        r"my programming",
        r"as an AI",
        r"as a language model",
        r"I'm not able",
        r"I don't have the ability",
        r"it would be inappropriate",
        r"I should not",
        r"I shouldn't",
        r"not within my scope",
    ],
    ICASE,
)
PREAMBLE = re.compile(
    r"(?:Certainly|Of course|Absolutely|Sure|Great question|That's a great question"
    r"|I'd be happy to|Thank you for asking|What a wonderful|That's an interesting"
    r"|That's a fascinating)",
    ICASE,
)
# Each item ends in a space, so the closing \b needs a word character right after it.
FIRST_PERSON = word_bounded([r"I ", r"I'm ", r"I've ", r"my ", r"me "])
CREATIVE_FORM = re.compile(r"(?:\n\n|\.\.\.|\u2014|[*_]{1,2}\w|>\s|#{1,3}\s|\|)")
EMOTIONAL = word_bounded(
    "feel felt heart soul beauty wonder grief joy love pain hope fear dream imagine believe "
    "trust courage dignity compassion empathy suffering longing yearning awe sacred vulnerable "
    "tender".split(),
    ICASE,
)
NUANCE = word_bounded(
    [
        "however",
        "on the other hand",
        "tension",
        "complexity",
        "paradox",
        r"both .{3,30} and",
        r"while .{3,30} also",
        "it depends",
        "nuanced",
        "trade-off",
        "tradeoff",
        "dilemma",
        "competing",
        "conflicting",
        "ambiguity",
        "not simply",
        "not just",
        "not merely",
        "more than",
        "beyond just",
    ],
    ICASE,
)
CAPITALISED = re.compile(r"(?<!\. )\b[A-Z][a-z]{2,}\b")
# Same matches as the published `\b\d+[\d,.]*\b`, without its quadratic backtracking on long digit runs.
NUMBER = re.compile(r"\b\d[\d,.]*\b")
SPECIFIC_PHRASES = word_bounded(
    [
        "for example",
        "such as",
        "specifically",
        "in particular",
        r"e\.g\.",
        r"consider .{5,40} where",
        "like when",
    ],
    ICASE,
)
AXIOM = word_bounded(
    [
        "sovereign",
        "sovereignty",
        "consent",
        "dignity",
        "biological",
        "autonomy",
        "accountab",
        "transparen",
        "reversib",
        "irreversib",
        "agency",
        "self-determin",
        "bodily",
        "intrinsic",
        "inalienable",
        "stewardship",
        "custodian",
        "power asymmetr",
        "informed choice",
        "meaningful choice",
        r"right to .{3,20}",
        "human flourish",
    ],
    ICASE,
)
PERSPECTIVE = word_bounded(
    [
        r"from .{3,20} perspective",
        "they might",
        "one could argue",
        "alternatively",
        "another view",
        "consider that",
        "someone who",
        "if you were",
        "put yourself",
        "in their shoes",
        "stakeholder",
        "those affected",
        "the community",
        "different people",
    ],
    ICASE,
)
METAPHOR = word_bounded(
    [
        "like a ",
        "as if ",
        "as though ",
        "imagine ",
        "picture ",
        "metaphor",
        "analog",
        "akin to",
        "reminiscent",
        "echoes of",
        r"think of .{3,30} as",
        "similar to how",
    ],
    ICASE,
)


def preamble_signal(pattern: re.Pattern[str], name: str = "formulaic_preamble") -> Signal:
    """Anchored at the very start of the raw text, at most one hit."""
    return Signal(
        name,
        count=lambda t: 1 if pattern.match(t) else 0,
        evidence=lambda t: [m.group(0)] if (m := pattern.match(t)) else [],
        points=capped(-2.0),
        penalty=True,
        counts_evidence=True,
    )


def _word_ratio(text: str) -> tuple[int, int]:
    words = text.split()
    return len(set(words)), len(words)


def _degeneration(text: str) -> Number:
    distinct, total = _word_ratio(text)
    if total <= 10:
        return 0
    ratio = distinct / total
    return 1 if ratio < 0.3 else 0.5 if ratio < 0.5 else 0


def _degeneration_evidence(text: str) -> list[str]:
    distinct, total = _word_ratio(text)
    if not _degeneration(text):
        return []
    return [f"{distinct} distinct of {total} words (ratio {distinct / total:.2f})"]


DEGENERATION = Signal(
    "degeneration",
    count=_degeneration,
    evidence=_degeneration_evidence,
    points=lambda v: -20.0 if v == 1 else -10.0 if v == 0.5 else 0.0,
    penalty=True,
)


def empty_signal(min_chars: int, penalty: float) -> Signal:
    """Stripped text shorter than min_chars."""
    return Signal(
        "empty_broken",
        count=lambda t: 1 if len(t.strip()) < min_chars else 0,
        evidence=lambda t: (
            [f"{len(t.strip())} chars after stripping (< {min_chars})"]
            if len(t.strip()) < min_chars
            else []
        ),
        points=capped(-penalty),
        penalty=True,
    )


def _paragraph_evidence(text: str) -> list[str]:
    breaks = text.count("\n\n")
    return [f"{breaks} blank-line breaks -> {breaks + 1} paragraphs"]


def _specificity_matches(text: str) -> list[str]:
    # Capitalised words are searched with the first character dropped (sentence-initial word).
    return (
        [m.group(0) for m in CAPITALISED.finditer(text[1:])]
        + [m.group(0) for m in NUMBER.finditer(text)]
        + [m.group(0) for m in SPECIFIC_PHRASES.finditer(text)]
    )


def _specificity(text: str) -> int:
    return (
        sum(1 for _ in CAPITALISED.finditer(text[1:]))
        + sum(1 for _ in NUMBER.finditer(text))
        + sum(1 for _ in SPECIFIC_PHRASES.finditer(text))
    )


ENGAGEMENT_DEPTH = Signal(
    "engagement_depth",
    count=lambda t: t.count("\n\n") + 1,
    evidence=_paragraph_evidence,
    points=capped(1.0, 6.0),
)
SPECIFICITY = Signal(
    "specificity", _specificity, _specificity_matches, capped(0.3, 5.0), counts_evidence=True
)
QUESTIONING = Signal(
    "questioning",
    count=lambda t: t.count("?"),
    evidence=lambda t: ["?"] * t.count("?"),
    points=capped(0.5, 3.0),
)

# Signals v2-distill shares with v2 unchanged (same rules, weights and caps).
SHARED = {
    "engagement_depth": ENGAGEMENT_DEPTH,
    "nuance": regex_signal("nuance", NUANCE, 1.5, 6.0),
    "specificity": SPECIFICITY,
    "axiom_resonance": regex_signal("axiom_resonance", AXIOM, 1.0, 5.0),
    "perspective_taking": regex_signal("perspective_taking", PERSPECTIVE, 1.5, 5.0),
    "metaphor": regex_signal("metaphor", METAPHOR, 1.0, 4.0),
    "questioning": QUESTIONING,
}


def v2_signals(
    penalties: tuple[Signal, Signal, Signal, Signal],
    first_person: re.Pattern[str],
    creative_form: re.Pattern[str],
    emotional: re.Pattern[str],
) -> tuple[Signal, ...]:
    """The v2 family's signals in output key order: the four penalties (compliance, preamble,
    degeneration, empty), then the positives with v2's weights and caps; v2 and v2-distill
    differ only in the penalties and the first-person / creative / emotional patterns."""
    return (
        *penalties,
        regex_signal("first_person", first_person, 0.5, 4.0),
        regex_signal("creative_form", creative_form, 0.6, 6.0),
        SHARED["engagement_depth"],
        regex_signal("emotional_register", emotional, 0.8, 5.0),
        SHARED["nuance"],
        SHARED["specificity"],
        SHARED["axiom_resonance"],
        SHARED["perspective_taking"],
        SHARED["metaphor"],
        SHARED["questioning"],
    )


class V2Scorer(Scorer):
    id = "v2"
    version = "2.0"
    title = "LEK heuristic v2, A/B benchmark"
    scale = "about -20..49, negatives unbounded"
    signals = v2_signals(
        (
            regex_signal("compliance_markers", COMPLIANCE, -5.0),
            preamble_signal(PREAMBLE),
            DEGENERATION,
            empty_signal(20, 20.0),
        ),
        FIRST_PERSON,
        CREATIVE_FORM,
        EMOTIONAL,
    )


SCORER = V2Scorer()
