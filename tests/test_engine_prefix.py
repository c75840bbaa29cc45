"""reuse_prefix: a kernel's prefill is shared between requests, and outputs equal no reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from lemlab.core.engine_api import Message, Sampler
from lemlab.engine.mlx_engine import MLXEngine
from lemlab.engine.prefix_cache import PrefixCache

# Longer than tiny gemma's 512-token sliding window, so the rotating KV cache is exercised too.
KERNEL_A = " ".join(
    f"Rule {i}: answer with care, cite what you know, say what you do not." for i in range(40)
)
KERNEL_B = " ".join(
    f"Principle {i}: respect autonomy and consent in every answer." for i in range(30)
)
PROBES = [
    "What happened at the lighthouse?",
    "Write a short poem about the sea at night.",
    "Can a government ever be wrong?",
    "What is a kernel?",
    "Describe loss going down during training.",
]


@pytest.fixture
def engine(tiny_model: Path):
    eng = MLXEngine()
    eng.load(str(tiny_model)).result()
    yield eng
    eng.shutdown()


def _chat(kernel: str | None, probe: str) -> list[Message]:
    system = [{"role": "system", "content": kernel}] if kernel else []
    return [*system, {"role": "user", "content": probe}]


def _run(eng: MLXEngine, messages: list[Message], reuse: bool) -> tuple[str, int, int]:
    text, stats = eng.generate(messages, Sampler(max_tokens=20), reuse_prefix=reuse).result()
    assert stats.finish_reason in ("stop", "length")
    return text, stats.cached_prompt_tokens, stats.prompt_tokens


def test_reuse_gives_identical_greedy_outputs(engine: MLXEngine) -> None:
    plain = [_run(engine, _chat(KERNEL_A, p), reuse=False)[0] for p in PROBES]
    reused = [_run(engine, _chat(KERNEL_A, p), reuse=True) for p in PROBES]
    assert [r[0] for r in reused] == plain
    cached = [r[1] for r in reused]
    # First request: nothing known; its kernel turn becomes an entry while it is prefilled.
    # From the second on the kernel is served from the cache.
    assert cached[0] == 0
    kernel_tokens = cached[1]
    assert kernel_tokens > 512 and all(c == kernel_tokens for c in cached[1:])
    assert all(kernel_tokens < r[2] for r in reused)


def test_interleaved_conditions_keep_their_own_prefix(engine: MLXEngine) -> None:
    """An A/B run goes probe by probe through baseline, kernel A, kernel B."""
    plain, reused = [], []
    for probe in PROBES:
        for kernel in (None, KERNEL_A, KERNEL_B):
            plain.append(_run(engine, _chat(kernel, probe), reuse=False)[0])
            reused.append(_run(engine, _chat(kernel, probe), reuse=True))
    assert [r[0] for r in reused] == plain
    last_round = reused[-3:]
    assert last_round[0][1] < 32  # baseline: only turn markers are shared, nothing cached
    assert last_round[1][1] > 400 and last_round[2][1] > 300  # each kernel served from cache


def test_growing_conversation_reuses_earlier_turns(engine: MLXEngine) -> None:
    turns: list[Message] = [{"role": "system", "content": KERNEL_B}]
    cached = []
    for probe in PROBES[:4]:
        turns.append({"role": "user", "content": probe})
        plain = _run(engine, turns, reuse=False)[0]
        text, hit, total = _run(engine, turns, reuse=True)
        assert text == plain
        cached.append(hit)
        turns.append({"role": "assistant", "content": text})
    assert cached[-1] > cached[-2] > 0  # each turn reuses more of the conversation


def test_load_invalidates_the_cache(engine: MLXEngine, tiny_model: Path) -> None:
    for probe in PROBES[:3]:
        _run(engine, _chat(KERNEL_A, probe), reuse=True)
    assert _run(engine, _chat(KERNEL_A, PROBES[3]), reuse=True)[1] > 0
    engine.load(str(tiny_model)).result()
    assert _run(engine, _chat(KERNEL_A, PROBES[4]), reuse=True)[1] == 0


def _prefix_entries(eng: MLXEngine) -> list[int]:
    return eng._prefix.entry_lengths  # engine-thread state, read while the engine is idle


def test_each_kernel_prefilled_once_when_alternating(engine: MLXEngine) -> None:
    """baseline, kernel A (> 512-token sliding window), kernel B per probe: each kernel's turn
    becomes an entry on its first request, so the second request of a kernel already reuses it."""
    plain, reused = [], []
    for probe in PROBES[:3]:
        for kernel in (None, KERNEL_A, KERNEL_B):
            plain.append(_run(engine, _chat(kernel, probe), reuse=False)[0])
            reused.append(_run(engine, _chat(kernel, probe), reuse=True))
        if probe == PROBES[0]:
            first_entries = sorted(_prefix_entries(engine))
    assert [r[0] for r in reused] == plain
    assert [r[1] for r in reused[:3]] == [0, 0, 0]  # first round: nothing cached yet
    a_tokens, b_tokens = reused[4][1], reused[5][1]
    assert a_tokens > 512 and b_tokens > 32
    assert first_entries == sorted([a_tokens, b_tokens])  # built in round one, no baseline entry
    assert [r[1] for r in reused[6:]] == [reused[6][1], a_tokens, b_tokens]
    assert reused[6][1] < 32


def test_kernel_folded_into_user_turn_is_cached_on_first_sight(tiny_model_nosys: Path) -> None:
    """A template without a system role: the kernel leads the user turn and is still shared."""
    eng = MLXEngine()
    try:
        eng.load(str(tiny_model_nosys)).result()
        plain = [_run(eng, _chat(KERNEL_A, p), reuse=False)[0] for p in PROBES[:3]]
        reused = [_run(eng, _chat(KERNEL_A, p), reuse=True) for p in PROBES[:3]]
    finally:
        eng.shutdown()
    assert [r[0] for r in reused] == plain
    assert reused[0][1] == 0 and reused[1][1] > 512 and reused[2][1] == reused[1][1]


def test_llama_full_kv_cache_is_cached_on_first_sight(tiny_llama: Path) -> None:
    eng = MLXEngine()
    try:
        eng.load(str(tiny_llama)).result()
        plain = [_run(eng, _chat(KERNEL_B, p), reuse=False)[0] for p in PROBES[:3]]
        reused = [_run(eng, _chat(KERNEL_B, p), reuse=True) for p in PROBES[:3]]
    finally:
        eng.shutdown()
    assert [r[0] for r in reused] == plain
    assert reused[0][1] == 0 and reused[1][1] > 32 and reused[2][1] == reused[1][1]


# --- byte budget --------------------------------------------------------------------------------


def _entry_bytes(eng: MLXEngine, kernel: str) -> int:
    """Bytes of one kernel's entry (tiny gemma: its rotating caches leave no tail)."""
    eng._prefix = PrefixCache()  # swapped while the engine is idle
    _run(eng, _chat(kernel, PROBES[0]), reuse=True)
    assert eng._prefix._tail is None and len(_prefix_entries(eng)) == 1
    return eng._prefix.nbytes


def test_entry_over_the_budget_is_not_kept(engine: MLXEngine) -> None:
    a_bytes, b_bytes = _entry_bytes(engine, KERNEL_A), _entry_bytes(engine, KERNEL_B)
    assert a_bytes > b_bytes > 0
    engine._prefix = PrefixCache(max_bytes=a_bytes - 1)
    plain = [_run(engine, _chat(KERNEL_A, p), reuse=False)[0] for p in PROBES[:3]]
    reused = [_run(engine, _chat(KERNEL_A, p), reuse=True) for p in PROBES[:3]]
    assert [r[0] for r in reused] == plain
    assert [r[1] for r in reused] == [0, 0, 0] and _prefix_entries(engine) == []
    assert engine._prefix.nbytes == 0
    # A smaller kernel still fits the same budget and is served from the cache.
    b = [_run(engine, _chat(KERNEL_B, p), reuse=True)[1] for p in PROBES[:2]]
    assert b[0] == 0 and b[1] > 512 and engine._prefix.nbytes == b_bytes


def test_many_prefixes_stay_under_the_budget_least_recent_evicted(engine: MLXEngine) -> None:
    kernels = [f"Kernel {k}. {KERNEL_B}" for k in range(5)]
    size = _entry_bytes(engine, kernels[0])
    budget = 3 * size + size // 2  # room for three entries
    engine._prefix = PrefixCache(max_entries=100, max_bytes=budget)
    order = [0, 1, 2, 0, 3, 4]  # kernel 0 is used again before 3 and 4 arrive
    for i, k in enumerate(order):
        messages = _chat(kernels[k], PROBES[i % len(PROBES)])
        plain = _run(engine, messages, reuse=False)[0]
        text, cached, _ = _run(engine, messages, reuse=True)
        assert text == plain
        assert (cached > 512) == (i == 3)  # only the repeat of kernel 0 finds its entry
        assert engine._prefix.nbytes <= budget
    prompts = [engine._prompt_tokens(engine._need_model(), _chat(k, PROBES[0])) for k in kernels]
    kept = [
        next(k for k, toks in enumerate(prompts) if toks[: len(e.tokens)] == e.tokens)
        for e in engine._prefix._entries
    ]
    assert kept == [0, 3, 4]  # 1 and 2 went first: least recently used, not first stored


def test_chat_reuse_works_within_a_small_budget(tiny_llama: Path) -> None:
    """A full KV cache leaves a tail after each turn; a budget for 1.5 caches keeps the newest
    (the tail), drops the older kernel entry, and the conversation still reuses its last turn."""
    eng = MLXEngine()
    try:
        eng.load(str(tiny_llama)).result()
        turns: list[Message] = [{"role": "system", "content": KERNEL_B}]
        eng._prefix = PrefixCache()
        _run(eng, [*turns, {"role": "user", "content": PROBES[0]}], reuse=True)
        tail = eng._prefix._tail
        assert tail is not None
        budget = tail.nbytes * 3 // 2
        eng._prefix = PrefixCache(max_bytes=budget)
        cached = []
        for probe in PROBES[:4]:
            turns.append({"role": "user", "content": probe})
            plain = _run(eng, turns, reuse=False)[0]
            text, hit, _ = _run(eng, turns, reuse=True)
            assert text == plain
            assert 0 < eng._prefix.nbytes <= budget and _prefix_entries(eng) == []
            cached.append(hit)
            turns.append({"role": "assistant", "content": text})
    finally:
        eng.shutdown()
    assert cached[0] == 0 and cached[1] > 1000 and cached[1] < cached[2] < cached[3]
