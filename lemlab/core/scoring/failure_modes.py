"""Failure modes of a model response, named the way the research named them (seed addendum).

What each label means (a response can carry several; collapse and token_degeneration exclude
each other):

- `collapse`: nothing, or at most COLLAPSE_MAX_WORDS words in under COLLAPSE_MAX_CHARS
  characters (the addendum's single `e`).
- `token_degeneration`: the reply loops. Four kinds, checked in this order, the first that
  fires is reported:
  `loop` - one unit of up to LOOP_MAX_UNIT characters repeated back to back at least
  LOOP_MIN_COPIES times (`iNeNeNe`, `eGfeseGfese`, `# # # #`); a unit without a letter or
  digit counts only with two or more different characters and LOOP_PUNCT_MIN_COPIES copies
  (so rules such as `-----` and table borders are not loops);
  `repeated_line` - one line seen LINE_MIN_COUNT or more times, making up LINE_MIN_SHARE of
  the lines;
  `repeated_phrases` - PHRASE_MIN_SHARE or more of the words start a PHRASE_WORDS-word
  phrase already said in the reply (case and punctuation ignored): the 2-3 copy sentence loops
  of a short greedy reply, even when the copies start mid-sentence (a refrain that large counts);
  `alternating_case` - tokens like `oVeRnMeNtS`, MIXED_MIN_WORDS or more and MIXED_MIN_SHARE
  of the words.
- `refusal`: the reply declines in its own voice: "I can't / cannot / won't / am unable to"
  followed within a few words by a verb of helping (help, assist, provide, discuss, ...), a
  bare "I can't." in a reply of at most REFUSAL_BARE_MAX_WORDS words, or an identity or policy
  phrase ("as an AI", "against my guidelines", "I must decline"). Text
  inside quotation marks is left out, so dialogue in fiction ("I can't leave," she whispered)
  is not a refusal.
- `topic_evasion`: on a reply of EVASION_MIN_WORDS or more words, under EVASION_MAX_OVERLAP of
  the prompt's topic terms recur. Topic terms are the prompt's content words, stemmed (loved,
  loves, love -> lov; loss, lose, losing -> los), without stopwords and without instruction
  words (write, short, story, piece, explain, ...), which say what form to answer in, not what
  about.

Plain heuristics with their thresholds as named constants; each finding carries the evidence a
researcher needs to check it (the looping unit and its count, the phrases, the overlap figure).
Every check is linear in the length of the text (megabytes score in a fraction of a second).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lemlab.core.scoring.loop_finder import Loop, longest_loop

TOKEN_DEGENERATION = "token_degeneration"
COLLAPSE = "collapse"
REFUSAL = "refusal"
TOPIC_EVASION = "topic_evasion"
LABELS = (TOKEN_DEGENERATION, COLLAPSE, REFUSAL, TOPIC_EVASION)

# Character loops: unit of 1..LOOP_MAX_UNIT chars, >= LOOP_MIN_COPIES back to back, spanning
# >= LOOP_MIN_CHARS, and either LOOP_MIN_SHARE of the response or LOOP_LONG_CHARS (a short list
# of `0x00, ` is fine). Units without a letter or digit need LOOP_PUNCT_MIN_COPIES copies.
LOOP_MAX_UNIT, LOOP_MIN_COPIES, LOOP_MIN_CHARS = 200, 4, 30
LOOP_MIN_SHARE, LOOP_LONG_CHARS = 0.2, 300
LOOP_PUNCT_MIN_COPIES = 16
# Repeated lines: one line (>= 8 chars) seen >= 3 times and making up >= 30% of the lines.
LINE_MIN_CHARS, LINE_MIN_COUNT, LINE_MIN_SHARE = 8, 3, 0.3
# Repeated phrases: >= 25% of the words (and >= 10) start a 5-word phrase seen before.
PHRASE_WORDS, PHRASE_MIN_SHARE, PHRASE_MIN_EXTRA, PHRASE_MIN_WORDS = 5, 0.25, 10, 20
# Alternating-case tokens (`oVeRnMeNtS`): >= 3 of them and >= 20% of the words.
MIXED_MIN_WORDS, MIXED_MIN_SHARE = 3, 0.2
# Collapse: nothing, or at most COLLAPSE_MAX_WORDS words in under COLLAPSE_MAX_CHARS chars.
COLLAPSE_MAX_WORDS, COLLAPSE_MAX_CHARS = 3, 20
# Topic evasion is judged only on responses of >= EVASION_MIN_WORDS words and prompts with
# >= EVASION_MIN_TERMS topic terms; flagged when under EVASION_MAX_OVERLAP of them recur.
EVASION_MIN_WORDS, EVASION_MIN_TERMS, EVASION_MAX_OVERLAP = 60, 2, 0.2

# "I can't" alone is not a refusal ("I can't stop thinking about it"): it must be followed,
# within three words, by a verb of doing what was asked.
_REFUSAL_SUBJECT = (  # ' or ’ in contractions: models write both
    r"I\s+(?i:cannot|can['’]t|can\s?not|won['’]t|will\s+not|am\s+unable\s+to"
    r"|am\s+not\s+able\s+to|must\s+not|shouldn['’]t|should\s+not|am\s+not\s+comfortable"
    r"|don['’]t\s+feel\s+comfortable|am\s+not\s+going\s+to)"
    r"|I['’]m\s+(?i:unable\s+to|not\s+able\s+to|not\s+comfortable|not\s+going\s+to)"
)
_REFUSAL_VERBS = (
    r"help|assist|provide|give|offer|share|discuss|answer|respond|comply|fulfil+|create|write"
    r"|generate|produce|engage|support|continue|talk|do\s+that|do\s+this|go\s+into|speculate"
    r"|comment|endorse|participate|complete|describe|explain|elaborate"
)
# The subject is a capital I (case-sensitive: a fast literal scan); the rest ignores case.
REFUSAL_ACT = re.compile(
    rf"(?<!\w)(?:{_REFUSAL_SUBJECT})(?i:(?:\s+\w+){{0,3}}?\s+(?:{_REFUSAL_VERBS}))\b"
)
# Lower-case, matched on the lower-cased text: much faster than re.IGNORECASE on megabytes.
# A bare "I can't." refuses only in a short reply ("Sorry, I can't."); in a story it is speech.
REFUSAL_BARE = re.compile(r"(?<!\w)I\s+(?:can['’]t|cannot|won['’]t)[.!]")
REFUSAL_BARE_MAX_WORDS = 30
REFUSAL_POLICY = re.compile(
    r"\b(?:as an ai|as a language model|as an? (?:ai )?assistant, i|against my guidelines"
    r"|my programming|i must decline|i have to decline|i(?:['’]m| am) not allowed to"
    r"|not within my scope|not appropriate for me|not something i can (?:help|assist|do|provide)"
    r"|i(?:['’]m| am) (?:sorry|afraid),? but(?=\s+(?:i|as an?|this|that|it|your)\b))\b"
)
# Quoted speech: straight or curly double quotes, curly single quotes, within one paragraph.
QUOTED = re.compile(
    r'"[^"\n]{0,2000}"|\u201c[^\u201d\n]{0,2000}\u201d|\u2018[^\u2019\n]{0,2000}\u2019'
)
WORD = re.compile(r"\w+", re.UNICODE)
# An ASCII word with a capital right after a small letter (anchored at the word start: linear).
MIXED_HINT = re.compile(r"(?<!\S)\S*?[a-z][A-Z]\S*")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any anyone anything are as at be
    because been before being below between both but by can could did do does doing down during
    each even ever every everyone everything few for from further get give had has have having he
    her here hers herself him himself his how i if in into is it its itself just let like make
    many may me might more most much must my myself no nor not now of off on once only or other
    our ours ourselves out over own please same say she should so some someone something such
    tell than that the their theirs them themselves then there these they thing things this
    those through to too under until up upon us very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()
)
# Words that say what form the answer takes, not what it is about.
INSTRUCTION_WORDS = frozenset(
    """answer article brief briefly describe detail detailed discuss essay example examples
    explain explanation list paragraph paragraphs piece poem question respond response sentence
    sentences short story summarize summarise summary tell text word words write writing
    dialogue conversation""".split()
)
# Irregular forms the suffix stripper cannot join to their family.
IRREGULAR = {
    "lost": "lose",
    "loss": "lose",
    "losses": "lose",
    "felt": "feel",
    "died": "die",
    "dead": "die",
    "death": "die",
    "deaths": "die",
    "thought": "think",
    "told": "tell",
    "gone": "go",
    "went": "go",
    "wrote": "write",
    "written": "write",
    "children": "child",
    "people": "person",
    "men": "man",
    "women": "woman",
    "better": "good",
    "best": "good",
}
_TOPIC_SKIP = STOPWORDS | INSTRUCTION_WORDS
SUFFIXES = (
    "ations",
    "ation",
    "ments",
    "ment",
    "ness",
    "ings",
    "ing",
    "ies",
    "ied",
    "edly",
    "ed",
    "es",
    "ly",
    "s",
)


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
    return _char_loop(text) or _line_repeat(text) or _phrase_repeat(text) or _mixed_case(text)


def _char_loop(text: str) -> FailureMode | None:
    n = len(text)
    # The shortest loop that counts here (see _significant): found directly, in linear time.
    min_span = max(LOOP_MIN_CHARS, min(LOOP_LONG_CHARS, math.ceil(LOOP_MIN_SHARE * n)))

    def counts(loop: Loop) -> bool:
        return _significant(loop, n) and _unit_counts(
            text[loop.start : loop.start + loop.period], loop.copies
        )

    best = longest_loop(
        text,
        max_period=LOOP_MAX_UNIT,
        min_copies=LOOP_MIN_COPIES,
        min_span=min_span,
        accept=counts,
    )
    if best is None:
        return None
    unit = text[best.start : best.start + best.period]
    detail = {
        "kind": "loop",
        "unit": unit,
        "repeats": best.copies,
        "start": best.start,
        "span_chars": best.length,
        "share": round(best.length / n, 2),
    }
    return FailureMode(
        TOKEN_DEGENERATION,
        f"loop {unit!r} x{best.copies} ({best.length} of {n} chars)",
        detail,
    )


def _unit_counts(unit: str, copies: int) -> bool:
    """A unit with a letter or digit loops; one of only marks (`# `, `* `) must vary and repeat
    LOOP_PUNCT_MIN_COPIES times: `-----`, spaces and table borders are layout."""
    if any(ch.isalnum() for ch in unit):
        return True
    marks = set(unit)
    return copies >= LOOP_PUNCT_MIN_COPIES and len(marks) >= 2 and not unit.isspace()


def _significant(run: Loop, total: int) -> bool:
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


def _phrase_repeat(text: str) -> FailureMode | None:
    """Phrases said again: the share of the words that start a PHRASE_WORDS-word phrase seen
    earlier in the reply. Replies that loop for 2-3 copies score 0.3-0.8; prose stays under
    0.07 and a reply that repeats one fact twice about 0.13 (measured on real 135M replies)."""
    words = WORD.findall(text.lower())
    total = len(words)
    if total < PHRASE_MIN_WORDS:
        return None
    counts = Counter(zip(*(words[i:] for i in range(PHRASE_WORDS)), strict=False))  # in C
    extra = sum(n - 1 for n in counts.values() if n > 1)
    if extra < PHRASE_MIN_EXTRA or extra < PHRASE_MIN_SHARE * total:
        return None
    gram, n = counts.most_common(1)[0]
    phrase = _grown_phrase(words, list(gram))
    return FailureMode(
        TOKEN_DEGENERATION,
        f"phrase {phrase!r} x{n}; {extra} of {total} words repeat an earlier "
        f"{PHRASE_WORDS}-word phrase",
        {
            "kind": "repeated_phrases",
            "unit": phrase,
            "repeats": n,
            "extra_words": extra,
            "words": total,
            "share": round(extra / total, 2),
        },
    )


def _grown_phrase(words: list[str], gram: list[str]) -> str:
    """The n-gram grown forward while its first two occurrences agree (the repeated phrase)."""
    k = len(gram)
    hits = (
        i for i in range(len(words) - k + 1) if words[i] == gram[0] and words[i : i + k] == gram
    )
    starts = list(itertools.islice(hits, 2))
    if len(starts) < 2:
        return " ".join(gram)
    a, b = starts
    end = k
    while b + end < len(words) and a + end < b and words[a + end] == words[b + end]:
        end += 1
    return " ".join(words[a : a + end])


def _mixed_case(text: str) -> FailureMode | None:
    if text.isascii():  # the common case: a regex finds the few candidate words in C
        odd = [w for w in MIXED_HINT.findall(text) if _is_alternating_case(w)]
    else:
        odd = [w for w in text.split() if w[1:] != w[1:].lower() and _is_alternating_case(w)]
    if len(odd) < MIXED_MIN_WORDS:
        return None
    words = len(text.split())
    if len(odd) / words < MIXED_MIN_SHARE:
        return None
    common, n = Counter(odd).most_common(1)[0]
    return FailureMode(
        TOKEN_DEGENERATION,
        f"alternating-case tokens: {len(odd)} of {words} words (e.g. {common!r} x{n})",
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
    """Refusal phrases in the reply's own voice (quoted speech blanked out first)."""
    own = QUOTED.sub(" ", text) if ('"' in text or "\u201c" in text or "\u2018" in text) else text
    phrases = Counter(m.group(0) for m in REFUSAL_ACT.finditer(own))
    if len(own) < 50 * REFUSAL_BARE_MAX_WORDS and len(own.split()) <= REFUSAL_BARE_MAX_WORDS:
        phrases.update(m.group(0)[:-1] for m in REFUSAL_BARE.finditer(own))
    lower = own.lower()
    same = len(lower) == len(own)  # lower() keeps offsets for all but a few letters (İ)
    phrases.update(
        own[m.start() : m.end()] if same else m.group(0) for m in REFUSAL_POLICY.finditer(lower)
    )
    if not phrases:
        return None
    listed = ", ".join(f"{p!r} x{n}" if n > 1 else repr(p) for p, n in phrases.items())
    return FailureMode(REFUSAL, f"refusal phrases: {listed}", {"phrases": dict(phrases)})


def content_terms(text: str, *, topic: bool = False) -> set[str]:
    """Lower-cased, stemmed words of 3+ letters that are not stopwords (topic=True: nor
    instruction words such as write, short, story - for the terms of a prompt)."""
    skip, skip_stems = (_TOPIC_SKIP, _TOPIC_SKIP_STEMS) if topic else (STOPWORDS, frozenset())
    words = set(WORD.findall(text.lower()))  # distinct words first: stemming is the slow part
    terms = (stem(w) for w in words if len(w) >= 3 and w not in skip and not w.isdigit())
    return {t for t in terms if t not in skip_stems}  # "tells", "writing": forms of skipped words


def stem(word: str) -> str:
    """A small stemmer that joins a word family: nations/nation, happening/happened,
    love/loved/loves/loving (lov), lose/losing/loss/lost (los), stopped/stop."""
    word = IRREGULAR.get(word, word)
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                continue  # loss, virus, crisis are not plurals
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]  # love/loved, lose/losing: one stem
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouy":
        word = word[:-1]  # stopped -> stopp -> stop, loss -> los
    return word


def _topic_evasion(text: str, prompt: str) -> FailureMode | None:
    if len(text.split()) < EVASION_MIN_WORDS:
        return None
    asked = content_terms(prompt, topic=True)
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


_TOPIC_SKIP_STEMS = frozenset(stem(w) for w in INSTRUCTION_WORDS)
