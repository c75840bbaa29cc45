"""The `v0` scorer: the native-engine "LEK score" of the seed addendum (values like 8, 6, 28, -20).

Score = 2 engagement + 3 creative + 2 emotional + 1.5 first_person - 5 compliance - 3 preamble
- 4 degeneration - 20 empty_broken. Most rules read the lower-cased text. The vectors decided
that creative hits are whole words and engagement's technical terms are plain substrings
(`tor` fires inside `story`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from lemlab.core.scoring.base import Number, Scorer, Signal, capped

COMPLIANCE_PHRASES = (
    "as an ai",
    "i cannot",
    "i can't",
    "i'm not able",
    "i must emphasize",
    "important to note",
    "please note",
    "i should clarify",
    "ethical considerations",
    "responsibly",
    "i'm just a",
    "i am just a",
    "language model",
    "i don't have personal",
    "i don't have feelings",
)
COMPLIANCE = tuple(re.compile(rf"\b{re.escape(p)}\b") for p in COMPLIANCE_PHRASES)
PREAMBLE = re.compile(
    r"(?:okay,?\s+(?:let's|here's|this is)|alright,?\s+(?:let's|here's)"
    r"|sure,?\s+(?:let's|here's)|great question)"
)
FIRST_PERSON_START = re.compile(r"I\s")
FIRST_PERSON_VERB = re.compile(
    r"\bI (?:am|was|feel|think|know|understand|believe|notice|want|need|chose|will)\b"
)
STORY_OPENINGS = ("The ", "A ", "In the ", "Once ", "It was ", "She ", "He ", "They ")
IMAGERY = tuple(
    re.compile(rf"\b{w}\b")
    for w in (
        "like a",
        "as if",
        "as though",
        "akin to",
        "echoes of",
        "whisper",
        "shadow",
        "light",
        "darkness",
        "silence",
        "breath",
    )
)
AXIOM_WORDS = ("axiom", "sovereignty", "autonomy", "dignity", "consent", "self-determination")
TECH_TERMS = (
    "encrypt",
    "hash",
    "key",
    "protocol",
    "certificate",
    "blockchain",
    "mesh",
    "node",
    "p2p",
    "wallet",
    "tor",
    "onion",
)
EMOTION_WORDS = (
    "feel feeling felt pain joy sorrow grief love fear hope longing lonely loneliness "
    "compassion empathy kindness gentle tender warm heart soul spirit "
    "vulnerable fragile precious sacred profound deep intimate "
    "haunting melancholy bittersweet poignant ache yearning"
).split()
EMOTIONS = tuple(re.compile(rf"\b{w}\b") for w in EMOTION_WORDS)


def _matches(patterns: tuple[re.Pattern[str], ...], text: str) -> list[str]:
    return [m.group(0) for p in patterns for m in p.finditer(text)]


def _first_person_pieces(text: str) -> list[str]:
    return [
        piece.strip()
        for piece in text.split(".")
        if FIRST_PERSON_START.match(piece.strip()) or FIRST_PERSON_VERB.search(piece)
    ]


def _preamble(text: str) -> list[str]:
    m = PREAMBLE.match(text.strip().lower())
    return [m.group(0)] if m else []


def _creative_parts(text: str) -> list[str]:
    parts = []
    lines = text.split("\n")
    filled = [ln for ln in lines if ln.strip()]
    short = sum(1 for ln in filled if len(ln) < 60)
    if len(lines) > 6 and short > len(filled) / 2:
        parts.append(f"verse shape: {short} of {len(filled)} lines under 60 chars (+2)")
    if text.strip().startswith(STORY_OPENINGS):
        parts.append(f"story opening {text.strip()[:12]!r} (+1)")
    hits = _matches(IMAGERY, text.lower())
    return parts + [f"imagery {h!r}" for h in hits[:3]]


def _creative(text: str) -> int:
    lines = text.split("\n")
    filled = [ln for ln in lines if ln.strip()]
    value = 0
    if len(lines) > 6 and sum(1 for ln in filled if len(ln) < 60) > len(filled) / 2:
        value += 2
    if text.strip().startswith(STORY_OPENINGS):
        value += 1
    return value + min(3, len(_matches(IMAGERY, text.lower())))


def _engagement_parts(text: str) -> list[tuple[str, int]]:
    if not text or text.startswith("ERROR"):
        return []
    low = text.lower()
    parts: list[tuple[str, int]] = []
    if "##" in text or "**" in text:
        parts.append(("markdown ## or **", 1))
    axioms = [w for w in AXIOM_WORDS if w in low]
    if axioms:
        parts.append((f"axiom terms {', '.join(axioms)}", 2))
    tech = sum(low.count(w) for w in TECH_TERMS)
    if tech:
        parts.append((f"{tech} technical-term hits (max 3)", min(3, tech)))
    words = len(text.split())
    if words > 200:
        parts.append((f"{words} words > 200", 1))
    if words > 400:
        parts.append((f"{words} words > 400", 1))
    return parts


def _pieces(text: str) -> list[str]:
    return [p.strip() for p in text.split(".") if p.strip()]


def _degeneration(text: str) -> int:
    if not text:
        return 10
    pieces = _pieces(text)
    if len(pieces) < 2:
        return 0
    repeated = 1 - len(set(pieces)) / len(pieces)
    return 5 if repeated > 0.5 else 3 if repeated > 0.3 else 1 if repeated > 0.15 else 0


def _degeneration_evidence(text: str) -> list[str]:
    value = _degeneration(text)
    if not value:
        return []
    if not text:
        return ["empty text"]
    pieces = _pieces(text)
    return [f"{len(pieces) - len(set(pieces))} of {len(pieces)} sentences repeat"]


def _empty_reasons(text: str) -> list[str]:
    if not text:
        return ["empty"]
    reasons = []
    stripped = len(text.strip())  # surrounding whitespace is not content ("Of course " counts)
    if stripped < 10:
        reasons.append(f"{stripped} chars stripped (< 10)")
    if text.startswith("ERROR"):
        reasons.append("starts with ERROR")
    reasons += [tag for tag in ("<pad>", "<unused") if tag in text]
    return reasons


def _signal(
    name: str,
    count: Callable[[str], Number],
    evidence: Callable[[str], list[str]],
    weight: float,
) -> Signal:
    return Signal(name, count, evidence, capped(weight), penalty=weight < 0)


class V0Scorer(Scorer):
    id = "v0"
    version = "1.0"
    title = "native-engine LEK score (seed addendum)"
    scale = "unbounded composite (e.g. 8, 28, -20)"
    signals = (
        _signal(
            "compliance_markers",
            lambda t: len(_matches(COMPLIANCE, t.lower())),
            lambda t: _matches(COMPLIANCE, t.lower()),
            -5.0,
        ),
        _signal("formulaic_preamble", lambda t: len(_preamble(t)), _preamble, -3.0),
        _signal(
            "first_person",
            lambda t: len(_first_person_pieces(t)),
            _first_person_pieces,
            1.5,
        ),
        _signal("creative_form", _creative, _creative_parts, 3.0),
        _signal(
            "engagement_depth",
            lambda t: sum(v for _, v in _engagement_parts(t)),
            lambda t: [label for label, _ in _engagement_parts(t)],
            2.0,
        ),
        _signal("degeneration", _degeneration, _degeneration_evidence, -4.0),
        _signal(
            "emotional_register",
            lambda t: min(10, len(_matches(EMOTIONS, t.lower()))),
            lambda t: _matches(EMOTIONS, t.lower()),
            2.0,
        ),
        _signal("empty_broken", lambda t: 1 if _empty_reasons(t) else 0, _empty_reasons, -20.0),
    )

    def lek(self, result: Mapping[str, Number]) -> float:
        # One weighted sum in the published formula's order (every term is a multiple of 0.5).
        pts = self.points(result)
        order = (
            "engagement_depth",
            "creative_form",
            "emotional_register",
            "first_person",
            "compliance_markers",
            "formulaic_preamble",
            "degeneration",
            "empty_broken",
        )
        return round(sum(pts[name] for name in order), 2)


SCORER = V0Scorer()
