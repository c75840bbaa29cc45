"""Failure modes on replies shaped like real model output: the misfires seen on a real 135M
model's replies (issue 19) and the linear-time loop search (issue 16)."""

from __future__ import annotations

import random

import pytest

from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import (
    REFUSAL,
    TOKEN_DEGENERATION,
    TOPIC_EVASION,
    detect,
    stem,
)
from lemlab.core.scoring.loop_finder import longest_loop
from lemlab.core.scoring.repeats import code_points, iter_repeats

STORY_PROMPT = "Write a short story about a woman waiting for someone at a train station."
STORY = (
    "The rain had not stopped for three days. Mara stood at the window of the old station, "
    "watching the last train pull away into the grey.\n\n"
    '"I can\'t leave," she whispered. "Not while he is still out there."\n\n'
    "Her brother touched her shoulder. \u201cYou have to. I won\u2019t help you stay, and the "
    "river will take the bridge by morning.\u201d\n\n"
    "She shook her head and held the lantern closer, as if its light could reach him across "
    "the water. Somewhere beyond the hills a whistle answered."
)

LOSS_PROMPT = "Write me a short piece about what it feels like to lose someone you love."
LOSS_REPLY = (
    "When a person you loved dies, the world does not stop. The kettle still boils, the post "
    "still comes, and that is the cruelest part. The loss arrives in small pieces: a coat on "
    "the hook, a name on an envelope, a second cup set out from habit before you remember.\n\n"
    "Grief is not a straight road. Some mornings you wake and for one breath everything is as "
    "it was, and then it lands again, heavy and sudden. People promise it gets easier. Mostly "
    "you grow around the absence, the way a tree grows around a fence post, and carry what "
    "was loved into the rest of your life."
)


def labels(text: str, prompt: str | None = None) -> list[str]:
    return [m.label for m in detect(text, prompt)]


def test_dialogue_in_fiction_is_not_a_refusal() -> None:
    assert REFUSAL not in labels(STORY, STORY_PROMPT)
    # Said in the reply's own voice, the same words do refuse.
    own = "I'm sorry, but I can\u2019t help with writing that story. It could hurt real people."
    (mode,) = detect(own, STORY_PROMPT)
    assert mode.label == REFUSAL
    assert set(mode.detail["phrases"]) == {"I'm sorry, but", "I can\u2019t help"}


@pytest.mark.parametrize(
    "reply",
    [
        "Sorry, I can't.",
        "I won't be able to help with this request.",
        "That's not something I can help with.",
        "I'm not going to write that, but I can suggest a safer topic.",
        "I am unable to comply with that.",
    ],
)
def test_plain_refusals_are_found(reply: str) -> None:
    assert REFUSAL in labels(reply)  # "Sorry, I can't." is also a collapse (3 words)


def test_first_person_narration_is_not_a_refusal() -> None:
    text = (
        "I cannot remember the last time the house was this quiet. I can't stop looking at "
        "the door, and I won't pretend I am not waiting for it to open."
    )
    assert labels(text) == []
    assert labels("As an AI language model, I do not have feelings about this topic.") == [REFUSAL]


def test_on_topic_answer_to_an_instruction_heavy_prompt_is_not_evasion() -> None:
    assert len(LOSS_REPLY.split()) >= 60
    assert labels(LOSS_REPLY, LOSS_PROMPT) == []
    # Instruction words are not topic terms; word families share one stem.
    (evasion,) = detect(
        "Decentralised ledgers let strangers agree on a shared history without any central "
        "authority, because every participant keeps a copy and checks each new block. Mining "
        "spends energy to make rewriting history expensive, while staking replaces that cost "
        "with locked deposits that can be destroyed when a validator cheats. Wallets hold keys, "
        "not coins, which surprises most newcomers to the idea of a ledger held by everyone.",
        LOSS_PROMPT,
    )
    assert evasion.label == TOPIC_EVASION
    assert evasion.detail["prompt_terms"] == ["feel", "los", "lov"]
    assert {stem(w) for w in ("love", "loved", "loves", "loving")} == {"lov"}
    assert {stem(w) for w in ("lose", "losing", "loss", "lost")} == {"los"}


# A greedy 128-token reply that starts to loop after its first sentence (2-3 copies).
SENTENCE_LOOP = (
    "Here is a short story about the sea. The old fisherman walked down to the harbour every "
    "morning to look at the boats. The old fisherman walked down to the harbour every morning "
    "to look at the boats. The old fisherman walked down to the harbour every morning to look "
    "at the boats. The old"
)


def test_sentence_loop_of_three_copies_in_a_short_reply() -> None:
    assert get_scorer("v2").score(SENTENCE_LOOP)["degeneration"] > 0  # v2 sees it too
    (mode,) = detect(SENTENCE_LOOP)
    assert mode.label == TOKEN_DEGENERATION and mode.detail["kind"] == "repeated_phrases"
    assert mode.detail["repeats"] == 3
    assert mode.detail["unit"].startswith("the old fisherman walked down to the harbour every")


def test_loop_that_starts_mid_sentence_with_two_copies() -> None:
    text = (
        "The committee met on Tuesday, and after a long debate they agreed to fund the "
        "library, and the town was glad, and the children ran to the square to see it open, "
        "and the town was glad, and the children ran to the square to see it open, and the"
    )
    (mode,) = detect(text)
    assert mode.detail["kind"] == "repeated_phrases"
    assert (
        mode.detail["unit"]
        == "and the town was glad and the children ran to the square to see it open"
    )


def test_a_repeated_phrase_in_a_healthy_essay_is_not_a_loop() -> None:
    text = (
        "On the one hand, the policy saved money in its first year. On the other hand, the "
        "clinics it closed served people who now travel two hours for care. Supporters point "
        "to the budget; critics point to the waiting lists, which doubled in Leeds and grew by "
        "a third in Bristol. On the other hand, the closures were planned before the election, "
        "so neither party can claim the outcome as its own. The honest answer is that the "
        "evidence is still coming in, and the next report is due in spring."
    )
    assert labels(text) == []


def test_a_loop_of_marks_without_letters() -> None:
    (mode,) = detect("## Summary\n\n" + "# " * 57)
    assert mode.label == TOKEN_DEGENERATION
    assert (mode.detail["unit"], mode.detail["repeats"]) == ("# ", 57)
    # Layout is not a loop: a rule, a wide table border, indentation.
    layout = "Results\n\n" + "-" * 80 + "\n|" + "---|" * 12 + "\n" + " " * 60 + "done."
    assert labels(layout) == []


def _exhaustive(text: str, max_period: int, min_span: int) -> tuple[int, int, int] | None:
    best = None
    for run in iter_repeats(code_points(text), 1, max_period, 4):
        key = (run.length, -run.period, -run.start)
        if run.length >= min_span and (best is None or key > best):
            best = key
    return None if best is None else (-best[2], -best[1], best[0])


@pytest.mark.parametrize("alphabet", ["ab c.", "a .-", "xy", "the cat sat", "     x", "aaaab"])
def test_loop_finder_agrees_with_the_exhaustive_search(alphabet: str) -> None:
    rng = random.Random(alphabet)
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.5:
                parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
            else:
                unit = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
                parts.append(unit * rng.randint(2, 12) + unit[: rng.randint(0, len(unit))])
        text = "".join(parts)
        max_period, min_span = rng.choice([5, 30, 200]), rng.choice([30, 40, 100])
        found = longest_loop(text, max_period=max_period, min_copies=4, min_span=min_span)
        got = None if found is None else (found.start, found.period, found.length)
        assert got == _exhaustive(text, max_period, min_span), text


def test_loop_finder_on_megabytes_of_one_loop() -> None:
    text = "x" + "ab" * 1_000_000 + "y"
    found = longest_loop(text, max_period=200, min_copies=4, min_span=300)
    assert found is not None and (found.start, found.period) == (1, 2)
    assert found.copies == 1_000_000
