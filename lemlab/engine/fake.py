"""A fake Engine for fast UI tests and demos without MLX: deterministic streamed text.

Implements lemlab.core.engine_api.Engine. The reply depends only on the last user message and
the sampler seed; tokens arrive `delay` seconds apart from a producer thread, like the real engine.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from lemlab.core.engine_api import Chunk, GenStats, LoadInfo, Message, Sampler
from lemlab.core.models.paths import is_demo_model
from lemlab.engine.handle import ChunkStream

_WORDS = (
    "the model weighs each claim and names what it does not know . consent matters "
    "because people decide for themselves ; a careful answer gives context , sources "
    "and limits . history is contested , so the reply keeps several views in sight"
).split()


def fake_reply(messages: list[Message], sampler: Sampler, length: int) -> list[str]:
    """The deterministic token list for a request (markdown-ish, so rendering is exercised)."""
    last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    seed = int(hashlib.sha256(f"{last_user}|{sampler.seed}".encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    head = ["**Reply**", " to", " “", last_user[:24].replace("\n", " "), "”", ":\n\n"]
    body = [" " + rng.choice(_WORDS) for _ in range(max(0, length - len(head)))]
    return (head + body)[: max(1, length)]


class FakeHandle(ChunkStream):
    """Streams chunks from a producer thread; cancel() stops at the next token. A ChunkStream,
    so it reads (take, wait, error, several readers) exactly like the MLX engine's handle."""

    def __init__(
        self,
        tokens: list[str],
        delay: float,
        max_tokens: int,
        error: str | None,
        fixed_stats: bool,
        prompt: tuple[int, int] = (12, 0),
    ) -> None:
        super().__init__()
        self._prompt = prompt  # (prompt tokens, of which served from the cache)
        self._fixed = fixed_stats
        args = (tokens[:max_tokens], delay, len(tokens) > max_tokens, error)
        threading.Thread(target=self._produce, args=args, daemon=True).start()

    def _produce(self, tokens: list[str], delay: float, truncated: bool, error: str | None) -> None:
        start = time.perf_counter()
        stats = GenStats(
            prompt_tokens=self._prompt[0],
            prompt_tps=1000.0,
            peak_memory=0.01,
            cached_prompt_tokens=self._prompt[1],
        )
        reason = "length" if truncated else "stop"
        for i, tok in enumerate(tokens):
            if self.cancelled:
                reason = "cancelled"
                break
            if error is not None and i == len(tokens) // 2:
                reason = "error"
                break
            if delay:
                time.sleep(delay)
            elapsed = time.perf_counter() - start
            if i == 0:
                stats.time_to_first_token = elapsed
            stats.generation_tokens = i + 1
            stats.generation_tps = (i + 1) / elapsed if elapsed > 0 else 0.0
            self.push(Chunk(tok, stats))
        stats.finish_reason = reason
        stats.elapsed = time.perf_counter() - start
        if self._fixed:  # snapshot tests need figures that never change
            stats.generation_tps, stats.time_to_first_token, stats.elapsed = 100.0, 0.01, 0.5
        self.finish(stats, error if reason == "error" else None)


class FakeEngine:
    """Engine without MLX. load_error / generate_error make the next calls fail (for error UIs)."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        length: int = 40,
        load_delay: float = 0.0,
        load_error: str | None = None,
        generate_error: str | None = None,
        fixed_stats: bool = False,
    ) -> None:
        self.delay, self.length, self.load_delay = delay, length, load_delay
        self.load_error, self.generate_error = load_error, generate_error
        self.fixed_stats = fixed_stats
        self.requests: list[tuple[list[Message], Sampler]] = []  # what the UI asked, for tests
        self._loaded: LoadInfo | None = None
        self._last: list[Message] | None = None  # the previous request, for cached figures
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fake-engine")

    @property
    def loaded(self) -> LoadInfo | None:
        return self._loaded

    def load(self, model: str, adapter: str | None = None) -> Future[LoadInfo]:
        return self._pool.submit(self._load, model, adapter)

    def _load(self, model: str, adapter: str | None) -> LoadInfo:
        if self.load_delay:
            time.sleep(self.load_delay)
        if self.load_error:
            raise RuntimeError(self.load_error)
        if not Path(model).exists() and "/" not in model:
            raise FileNotFoundError(f"no model at {model}")
        info = LoadInfo(model, adapter, "fake", 2, True, is_demo_model(model), self.load_delay)
        self._loaded = info
        return info

    def unload(self) -> Future[None]:
        def _unload() -> None:
            self._loaded = None

        return self._pool.submit(_unload)

    def generate(
        self, messages: list[Message], sampler: Sampler, *, reuse_prefix: bool = False
    ) -> FakeHandle:
        if self._loaded is None:
            raise RuntimeError("no model loaded")
        self.requests.append((list(messages), sampler))
        tokens = fake_reply(messages, sampler, self.length)
        return FakeHandle(
            tokens,
            self.delay,
            sampler.max_tokens,
            self.generate_error,
            self.fixed_stats,
            self._prompt_figures(messages, reuse_prefix),
        )

    def _prompt_figures(self, messages: list[Message], reuse: bool) -> tuple[int, int]:
        """(prompt tokens, cached): a word is a token; with reuse, the messages the previous
        request shares with this one come from the cache, as with the MLX engine."""
        words = [len(m["content"].split()) + 4 for m in messages]  # as count_tokens
        cached = 0
        if reuse and self._last is not None:
            shared = 0
            while (
                shared < min(len(messages), len(self._last))
                and messages[shared] == self._last[shared]
            ):
                shared += 1
            cached = sum(words[:shared])
        self._last = list(messages) if reuse else None
        return sum(words), cached

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        """A word is a token here, as in the prompt figures below."""
        return self._pool.submit(lambda: sum(len(m["content"].split()) + 4 for m in messages))

    def engine_cpu_seconds(self) -> float | None:
        return None  # no generating thread worth pacing by

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
