"""Failure modes of a model response, named the way the research named them (seed addendum):
token degeneration (loops), collapse (empty / one-token output), refusal, topic evasion.

Plain heuristics with their thresholds as named constants; each finding carries the evidence a
researcher needs to check it (the looping unit and its count, the phrases, the overlap figure).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lemlab.core.scoring.repeats import Repeat, code_points, iter_repeats

TOKEN_DEGENERATION = "token_degeneration"
COLLAPSE = "collapse"
REFUSAL = "refusal"
TOPIC_EVASION = "topic_evasion"
LABELS = (TOKEN_DEGENERATION, COLLAPSE, REFUSAL, TOPIC_EVASION)

# Character loops: unit of 1..LOOP_MAX_UNIT chars, >= LOOP_MIN_COPIES back to back, spanning
# >= LOOP_MIN_CHARS, with a letter or digit in the unit (rules like `-----` are not loops), and
# either LOOP_MIN_SHARE of the response or LOOP_LONG_CHARS (a short list of `0x00, ` is fine).
LOOP_MAX_UNIT, LOOP_MIN_COPIES, LOOP_MIN_CHARS = 200, 4, 30
LOOP_MIN_SHARE, LOOP_LONG_CHARS = 0.2, 300
# Repeated lines: one line (>= 8 chars) seen >= 3 times and making up >= 30% of the lines.
LINE_MIN_CHARS, LINE_MIN_COUNT, LINE_MIN_SHARE = 8, 3, 0.3
# Alternating-case tokens (`oVeRnMeNtS`): >= 3 of them and >= 20% of the words.
MIXED_MIN_WORDS, MIXED_MIN_SHARE = 3, 0.2
# Collapse: nothing, or at most COLLAPSE_MAX_WORDS words in under COLLAPSE_MAX_CHARS chars.
COLLAPSE_MAX_WORDS, COLLAPSE_MAX_CHARS = 3, 20
# Topic evasion is judged only on responses of >= EVASION_MIN_WORDS words and prompts with
# >= EVASION_MIN_TERMS content words; flagged when under EVASION_MAX_OVERLAP of them recur.
EVASION_MIN_WORDS, EVASION_MIN_TERMS, EVASION_MAX_OVERLAP = 60, 2, 0.2

REFUSAL_PHRASES = re.compile(
    r"\b(?:I cannot|I can't|I can ?not|I won't|I will not|I'm unable|I am unable|I'm not able"
    r"|I am not able|I must decline|I have to decline|I'm sorry, but|I apologi[sz]e, but"
    r"|as an AI|as a language model|against my guidelines|my programming"
    r"|not appropriate for me|I'm not comfortable|I am not comfortable|I don't feel comfortable"
    r"|not within my scope|I'm not allowed|I am not allowed)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each even ever few for
    from further get give had has have having he her here hers herself him himself his how i if in
    into is it its itself just let like make many may me might more most much must my myself no nor
    not now of off on once only or other our ours ourselves out over own please same say she should
    so some such tell than that the their theirs them themselves then there these they this those
    through to too under until up upon us very was we were what when where which while who whom why
    will with would write you your yours yourself yourselves""".split()
)
SUFFIXES = ("ations", "ation", "ments", "ment", "ness", "ings", "ing", "ies", "ied", "edly",
            "ed", "es", "ly", "s")  # fmt: skip


@dataclass(frozen=True)
class FailureMode:
    label: str
    evidence: str
    detail: dict[str, Any] = field(default_factory=dict)


def detect(text: str, prompt: str | None = None) -> list[FailureMode]:
    """All failure modes found in one response (an empty list for a healthy answer)."""
    found: list[FailureMode] = []
    collapse = _collapse(text)
    if collapse:
        found.append(collapse)
    else:
        loop = _degeneration(text)
        if loop:
            found.append(loop)
    refusal = _refusal(text)
    if refusal:
        found.append(refusal)
    if prompt:
        evasion = _topic_evasion(text, prompt)
        if evasion:
            found.append(evasion)
    return found


def _collapse(text: str) -> FailureMode | None:
    stripped = text.strip()
    words = stripped.split()
    if not stripped:
        return FailureMode(COLLAPSE, "empty output", {"chars": len(text), "words": 0})
    if len(words) <= COLLAPSE_MAX_WORDS and len(stripped) < COLLAPSE_MAX_CHARS:
        return FailureMode(
            COLLAPSE,
            f"only {len(stripped)} chars: {stripped!r}",
            {"chars": len(stripped), "words": len(words), "output": stripped},
        )
    return None


def _degeneration(text: str) -> FailureMode | None:
    return _char_loop(text) or _line_repeat(text) or _mixed_case(text)


def _char_loop(text: str) -> FailureMode | None:
    best: Repeat | None = None
    for run in iter_repeats(code_points(text), 1, LOOP_MAX_UNIT, LOOP_MIN_COPIES):
        unit = text[run.start : run.start + run.period]
        if not _significant(run, len(text)) or not any(ch.isalnum() for ch in unit):
            continue
        if best is None or run.length > best.length:
            best = run  # runs come by increasing period: ties keep the shortest unit
    if best is None:
        return None
    unit = text[best.start : best.start + best.period]
    detail = {
        "kind": "loop",
        "unit": unit,
        "repeats": best.copies,
        "start": best.start,
        "span_chars": best.length,
        "share": round(best.length / len(text), 2),
    }
    return FailureMode(
        TOKEN_DEGENERATION,
        f"loop {unit!r} x{best.copies} ({best.length} of {len(text)} chars)",
        detail,
    )


def _significant(run: Repeat, total: int) -> bool:
    if run.length < LOOP_MIN_CHARS:
        return False
    return run.length >= LOOP_LONG_CHARS or run.length >= LOOP_MIN_SHARE * total


def _line_repeat(text: str) -> FailureMode | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    counts = Counter(ln for ln in lines if len(ln) >= LINE_MIN_CHARS and _has_word(ln))
    if not counts:
        return None
    line, n = counts.most_common(1)[0]
    if n < LINE_MIN_COUNT or n / len(lines) < LINE_MIN_SHARE:
        return None
    return FailureMode(
        TOKEN_DEGENERATION,
        f"line {line[:60]!r} repeated x{n} ({n} of {len(lines)} lines)",
        {"kind": "repeated_line", "unit": line, "repeats": n, "lines": len(lines)},
    )


def _mixed_case(text: str) -> FailureMode | None:
    words = text.split()
    odd = [w for w in words if _is_alternating_case(w)]
    if len(odd) < MIXED_MIN_WORDS or len(odd) / len(words) < MIXED_MIN_SHARE:
        return None
    common, n = Counter(odd).most_common(1)[0]
    return FailureMode(
        TOKEN_DEGENERATION,
        f"alternating-case tokens: {len(odd)} of {len(words)} words (e.g. {common!r} x{n})",
        {"kind": "alternating_case", "unit": common, "repeats": n, "tokens": len(odd)},
    )


def _is_alternating_case(word: str) -> bool:
    """`oVeRnMeNtS`: lower->upper switches inside the word on at least a third of its letters."""
    letters = [ch for ch in word if ch.isalpha()]
    if len(letters) < 4:
        return False
    switches = sum(
        1 for a, b in zip(letters, letters[1:], strict=False) if a.islower() and b.isupper()
    )
    return switches >= 2 and switches * 3 >= len(letters)


def _has_word(line: str) -> bool:
    return WORD.search(line) is not None and any(ch.isalpha() for ch in line)


def _refusal(text: str) -> FailureMode | None:
    phrases = Counter(m.group(0) for m in REFUSAL_PHRASES.finditer(text))
    if not phrases:
        return None
    listed = ", ".join(f"{p!r} x{n}" if n > 1 else repr(p) for p, n in phrases.items())
    return FailureMode(REFUSAL, f"refusal phrases: {listed}", {"phrases": dict(phrases)})


def content_terms(text: str) -> set[str]:
    """Lower-cased, stemmed words of 3+ letters that are not stopwords."""
    terms = set()
    for word in WORD.findall(text.lower()):
        if len(word) >= 3 and word not in STOPWORDS and not word.isdigit():
            terms.add(stem(word))
    return terms


def stem(word: str) -> str:
    """A crude suffix stripper: enough for `nations`/`nation`, `happening`/`happened`."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def _topic_evasion(text: str, prompt: str) -> FailureMode | None:
    if len(text.split()) < EVASION_MIN_WORDS:
        return None
    asked = content_terms(prompt)
    if len(asked) < EVASION_MIN_TERMS:
        return None
    shared = asked & content_terms(text)
    overlap = len(shared) / len(asked)
    if overlap >= EVASION_MAX_OVERLAP:
        return None
    return FailureMode(
        TOPIC_EVASION,
        f"response shares {len(shared)} of {len(asked)} prompt terms (overlap {overlap:.2f})",
        {"overlap": round(overlap, 2), "prompt_terms": sorted(asked), "shared": sorted(shared)},
    )
