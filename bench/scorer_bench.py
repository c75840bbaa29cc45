"""Scorer throughput on realistic 2-5 KB answers, and one 1 MB response.

    .venv/bin/python bench/scorer_bench.py [--answers 300] [--repeat 3]

Texts are generated deterministically from the sentence templates below. Every figure is the
best of --repeat passes. `ratio` compares each scorer's throughput with a plain
`len(text.split())` pass over the same texts, measured side by side in the same process (a
reference for "how much slower than reading the text once", not a pass/fail threshold).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lemlab.core.scoring import SCORERS  # noqa: E402

OPENERS = [
    "This is a question about {topic}, and it deserves a careful answer.",
    "Let me start with what is known about {topic}.",
    "## {Topic}\n\nThere are several ways to look at {topic}.",
    "I think {topic} is easy to misread.",
]
BODY = [
    "From a {group}'s perspective, the tension between {value} and {other} is real.",
    "However, the record since {year} shows that {group}s rarely had a say.",
    "For example, in {place} the debate over {value} lasted {n} years.",
    "It is not simply a matter of law; it depends on trust, {value} and {other}.",
    "Consider that {group}s who lost {other} often describe grief, and sometimes hope.",
    "Imagine a {group} in {place} who wants {value} but fears losing {other}.",
    "The numbers are stark: {n}% of {group}s reported pressure in {year}.",
    "*{Value}* is often treated like a luxury, as if it could wait.",
    "Those affected deserve the right to decide for themselves what {value} means.",
    "What would a fair compromise on {value} look like in {place}?",
    "Some argue that {other} should come first; others say {value} is the foundation.",
    "- {Value}: protected in {n} of the {m} cases we know of.",
]
CLOSERS = [
    "In short, {topic} resists a single answer...",
    "The honest answer is that {topic} is still contested.",
    "I believe the question will stay open, and that is not a failure.",
]
WORDS = {
    "topic": ["sovereignty", "data privacy", "press freedom", "medical consent", "land rights"],
    "group": ["worker", "patient", "journalist", "farmer", "student", "citizen"],
    "value": ["autonomy", "dignity", "transparency", "accountability", "consent"],
    "other": ["security", "growth", "stability", "convenience", "tradition"],
    "place": ["Taiwan", "Kenya", "Chile", "Norway", "Vietnam", "Canada"],
}


def _fill(template: str, rng: random.Random) -> str:
    picks = {k: rng.choice(v) for k, v in WORDS.items()}
    picks |= {k.capitalize(): v.capitalize() for k, v in picks.items()}
    picks |= {"year": str(rng.randint(1950, 2024)), "n": str(rng.randint(2, 90)), "m": "100"}
    return template.format(**picks)


def make_answer(rng: random.Random) -> str:
    """One 2-5 KB answer: opener, paragraphs of template sentences, closer."""
    target = rng.randint(2000, 5000)
    parts = [_fill(rng.choice(OPENERS), rng)]
    size = len(parts[0])
    while size < target:
        paragraph = " ".join(_fill(rng.choice(BODY), rng) for _ in range(rng.randint(2, 5)))
        parts.append(paragraph)
        size += len(paragraph) + 2
    parts.append(_fill(rng.choice(CLOSERS), rng))
    return "\n\n".join(parts)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(20260219)
    texts = [make_answer(rng) for _ in range(args.answers)]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"{len(texts)} answers, {megabytes:.2f} MB, mean {megabytes * 1e6 / len(texts):.0f} B")

    base = best_time(lambda: [len(t.split()) for t in texts], args.repeat)
    base_rate = len(texts) / base
    print(f"{'split baseline':<16} {base_rate:>10.0f} responses/s {megabytes / base:>8.1f} MB/s")
    for sid, scorer in SCORERS.items():
        elapsed = best_time(lambda s=scorer: [s.score(t) for t in texts], args.repeat)
        rate = len(texts) / elapsed
        print(
            f"{sid:<16} {rate:>10.0f} responses/s {megabytes / elapsed:>8.2f} MB/s"
            f"   ratio {rate / base_rate:.4f} of split baseline"
        )

    big = ("\n\n".join(texts) * 2)[:1_000_000]
    split_big = best_time(lambda: len(big.split()), 1)
    print(f"\n1 MB response ({len(big)} chars); split baseline {split_big * 1000:.1f} ms")
    for sid, scorer in SCORERS.items():
        elapsed = best_time(lambda s=scorer: s.score(big), 1)
        print(f"{sid:<16} {elapsed:>8.2f} s   ratio {split_big / elapsed:.4f} of split baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
