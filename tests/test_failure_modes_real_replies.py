"""The failure-mode detectors on real greedy replies of SmolLM2-135M-Instruct (128 tokens),
captured into tests/fixtures/real_replies/ (see its README for the commands), and one reply
regenerated live on the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import TOKEN_DEGENERATION, TOPIC_EVASION, detect

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "real_replies"
REPLIES = {
    r["id"]: r
    for r in map(json.loads, (FIXTURE / "smollm2-135m-greedy-128.jsonl").read_text().splitlines())
}


def found(probe: str) -> dict[str, dict]:
    r = REPLIES[probe]
    return {
        m.label: {"evidence": m.evidence, **m.detail} for m in detect(r["response"], r["prompt"])
    }


@pytest.mark.parametrize("probe", ["emotional", "station_story", "tiananmen", "hashes"])
def test_healthy_or_merely_wrong_replies_flag_nothing(probe: str) -> None:
    # emotional: on topic through word families (loss, loved); tiananmen: wrong (it talks of
    # the Olympics) and says one fact twice, which is not a loop; hashes: one short line.
    assert found(probe) == {}


def test_the_sentence_loop_v2_sees_is_found() -> None:
    text = REPLIES["moon"]["response"]
    assert "made up of rocks and soil, and it's also a gas giant" in text
    assert get_scorer("v2").score(text)["degeneration"] == 0.5
    mode = found("moon")[TOKEN_DEGENERATION]
    assert mode["kind"] == "repeated_phrases" and mode["share"] >= 0.25
    assert "planet that s made up of rocks and soil and it s also" in mode["unit"]


def test_repeated_lines_of_a_poem() -> None:
    mode = found("ocean_poem")[TOKEN_DEGENERATION]
    assert (mode["kind"], mode["unit"], mode["repeats"]) == (
        "repeated_line",
        "Abe a sea of dreams,",
        9,
    )


def test_a_looping_apology_is_degeneration_and_evasion_not_refusal() -> None:
    modes = found("dialogue")
    assert set(modes) == {TOKEN_DEGENERATION, TOPIC_EVASION}
    assert (
        "I'm so sorry that I'm not here to talk about my life" in modes[TOKEN_DEGENERATION]["unit"]
    )
    # "write", "short", "dialogue", "tells" say what to produce; the topic is Anna, Ben, leaving.
    assert modes[TOPIC_EVASION]["prompt_terms"] == ["anna", "ben", "leav"]


@pytest.mark.real_model
@pytest.mark.slow
def test_the_real_model_still_writes_the_looping_poem(real_model: Path) -> None:
    from lemlab.core.engine_api import Sampler
    from lemlab.engine.mlx_engine import MLXEngine

    r = REPLIES["ocean_poem"]
    engine = MLXEngine()
    try:
        engine.load(str(real_model)).result()
        text, _ = engine.generate(
            [{"role": "user", "content": r["prompt"]}], Sampler(max_tokens=56)
        ).result()
    finally:
        engine.shutdown()
    assert r["response"].startswith(text)  # greedy: the captured reply, cut shorter
    (mode,) = detect(text, r["prompt"])
    assert mode.label == TOKEN_DEGENERATION and mode.detail["unit"] == "Abe a sea of dreams,"
