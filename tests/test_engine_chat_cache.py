"""A chat's turns reuse the last turn's cache (prompt and reply), so each turn prefills only the
new message; greedy outputs equal processing the whole conversation alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from lemlab.core.engine_api import Message, Sampler
from lemlab.engine.mlx_engine import MLXEngine

QUESTIONS = [
    "What is a kernel, in one paragraph, for someone who has never trained a model?",
    "And how does a kernel differ from a system prompt that a user types?",
    "Give one example of a kernel rule about consent.",
]


@pytest.fixture
def engine(tiny_llama: Path):
    eng = MLXEngine()
    eng.load(str(tiny_llama)).result()
    yield eng
    eng.shutdown()


def _conversation(eng: MLXEngine, reuse: bool) -> list[tuple[str, int, int]]:
    turns: list[Message] = []
    out = []
    for q in QUESTIONS:
        turns.append({"role": "user", "content": q})
        text, stats = eng.generate(turns, Sampler(max_tokens=24), reuse_prefix=reuse).result()
        assert stats.finish_reason in ("stop", "length")
        out.append((text, stats.cached_prompt_tokens, stats.prompt_tokens))
        turns.append({"role": "assistant", "content": text})
    return out


def test_chat_turns_reuse_the_previous_reply(engine: MLXEngine) -> None:
    plain = _conversation(engine, reuse=False)
    reused = _conversation(engine, reuse=True)
    assert [r[0] for r in reused] == [p[0] for p in plain]
    assert [p[1] for p in plain] == [0, 0, 0]
    cached = [r[1] for r in reused]
    prompts = [r[2] for r in reused]
    assert cached[0] == 0 and 0 < cached[1] < cached[2]
    # Everything up to the previous turn's prompt comes from the cache (no kernel needed):
    # only the last reply's re-templated tail and the new question are prefilled.
    assert cached[1] >= prompts[0] and cached[2] >= prompts[1]


def test_without_reuse_nothing_is_kept(engine: MLXEngine) -> None:
    _conversation(engine, reuse=False)
    assert engine._prefix._tail is None


def test_prefill_progress_is_kept_on_the_handle(engine: MLXEngine) -> None:
    from lemlab.tui.panes.chat import waiting_text

    seen: list[tuple[int, int] | None] = []
    handle = engine.generate(
        [{"role": "user", "content": "lighthouse " * 2500}], Sampler(max_tokens=2)
    )
    for _ in handle:
        seen.append(handle.prefilled)
    _, stats = handle.result()
    total = stats.prompt_tokens
    assert total > 2048 and seen[-1] == (total, total)  # read as the stream goes
    assert "prefill 2048/5000 tokens" in waiting_text(12.0, (2048, 5000))
    assert "prefill" not in waiting_text(1.0, (5000, 5000)) and "1.0 s" in waiting_text(1.0, None)
