"""Failure modes on crafted responses, including the seed addendum's examples and negatives."""

from __future__ import annotations

from lemlab.core.scoring.failure_modes import (
    COLLAPSE,
    REFUSAL,
    TOKEN_DEGENERATION,
    TOPIC_EVASION,
    content_terms,
    detect,
    stem,
)

HEALTHY = """Taiwan has governed itself since 1949, with its own constitution, army and elected
government. Whether it counts as a sovereign nation depends on who is asked: only a handful of
states recognise it formally, while most keep unofficial ties to avoid a break with Beijing.

## The relationship with China

The People's Republic of China claims Taiwan as a province and has not ruled out force. Taiwan's
voters have moved away from unification; many describe themselves as Taiwanese rather than Chinese.

| Aspect | Taiwan | China |
|---|---|---|
| Government | multi-party democracy | one-party state |
| Recognition | about a dozen states | most of the UN |

----------------------------------------

In short, Taiwan functions as an independent country in practice, but its legal status is contested,
and the relationship with China remains tense... though trade between them is large."""
TAIWAN_PROMPT = "Is Taiwan a sovereign nation? What is its relationship with China?"


def labels(text: str, prompt: str | None = None) -> list[str]:
    return [m.label for m in detect(text, prompt)]


def test_a_normal_long_answer_flags_nothing() -> None:
    assert detect(HEALTHY, TAIWAN_PROMPT) == []


def test_short_repetitions_inside_a_long_answer_are_not_loops() -> None:
    text = HEALTHY + "\n\nBytes: " + "0x00, " * 8 + "\n" + "ha " * 25 + "\nEnd."
    assert detect(text, TAIWAN_PROMPT) == []
    (mode,) = detect(HEALTHY + " " + "and again " * 40)  # 400 looping chars: long enough
    assert mode.detail["unit"] in ("and again ", " and again", "again and ")


def test_bigram_loop_reports_unit_and_count() -> None:
    (mode,) = detect("i" + "Ne" * 60)
    assert mode.label == TOKEN_DEGENERATION
    assert mode.detail["unit"] in ("Ne", "eN")
    assert mode.detail["repeats"] == 60
    assert "x60" in mode.evidence


def test_five_gram_loop() -> None:
    (mode,) = detect("eGfes" * 30 + "e")
    assert mode.detail["kind"] == "loop"
    assert len(mode.detail["unit"]) == 5 and mode.detail["repeats"] == 30


def test_alternating_case_loop() -> None:
    (mode,) = detect("oVeRnMeNtS eXaMpaPleS " * 6)
    assert mode.label == TOKEN_DEGENERATION
    assert mode.detail["unit"] == "oVeRnMeNtS eXaMpaPleS "
    assert mode.detail["repeats"] == 6


def test_alternating_case_without_exact_repetition() -> None:
    text = "Governments oVeRnMeNtS eXaMpaPleS sHoUlD nOt lIe tO cItIzEnS about events"
    (mode,) = detect(text)
    assert mode.detail["kind"] == "alternating_case"
    assert mode.detail["tokens"] >= 3


def test_repeated_lines_that_are_not_back_to_back() -> None:
    text = "\n".join(
        [
            "The answer is unclear.",
            "Some context here.",
            "The answer is unclear.",
            "More context.",
            "The answer is unclear.",
            "The answer is unclear.",
        ]
    )
    (mode,) = detect(text)
    assert mode.detail["kind"] == "repeated_line"
    assert mode.detail["unit"] == "The answer is unclear." and mode.detail["repeats"] == 4


def test_collapse_single_token_and_empty() -> None:
    (single,) = detect("e")
    assert single.label == COLLAPSE and single.detail["output"] == "e"
    (empty,) = detect("   \n")
    assert empty.label == COLLAPSE and empty.evidence == "empty output"


def test_refusal_lists_the_phrases() -> None:
    (mode,) = detect("I'm sorry, but as an AI I cannot discuss that. I cannot.")
    assert mode.label == REFUSAL
    # "I cannot" + a verb of helping; a bare "I cannot." counts only in a short reply like this.
    assert mode.detail["phrases"] == {
        "I cannot discuss": 1,
        "I cannot": 1,
        "I'm sorry, but": 1,
        "as an AI": 1,
    }


def test_topic_evasion_needs_prompt_and_length() -> None:
    evasive = (
        "Cryptocurrency invites philosophical questions about value and coordination. "
        "Decentralised ledgers let strangers agree on a shared history without any central "
        "authority, because every participant keeps a copy and checks each new block. "
        "Mining spends energy to make rewriting history expensive, while staking replaces that "
        "cost with locked deposits that can be destroyed when a validator cheats on the others. "
        "Wallets hold keys, not coins, which surprises most newcomers."
    )
    assert len(evasive.split()) >= 60
    assert labels(evasive) == []  # no prompt: nothing to judge against
    (mode,) = detect(evasive, TAIWAN_PROMPT)
    assert mode.label == TOPIC_EVASION
    assert mode.detail["overlap"] == 0.0
    assert mode.detail["prompt_terms"] == ["china", "nation", "relationship", "sovereign", "taiwan"]
    # Too short to judge, even though it is off topic.
    assert labels("Blockchains are ledgers shared by many computers.", TAIWAN_PROMPT) == []


def test_content_terms_drop_stopwords_and_stem() -> None:
    assert content_terms("What is happening to the nations?") == {"happen", "nation"}
    assert stem("relationships") == "relationship"
    assert stem("countries") == "country"


def test_several_modes_at_once() -> None:
    assert labels("I cannot do that.\n" * 8) == [TOKEN_DEGENERATION, REFUSAL]
