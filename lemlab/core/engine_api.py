"""The contract between the engine (the one owner of MLX) and its callers (CLI, TUI, runners).

Headless: no mlx here. The real engine lives in lemlab.engine.mlx_engine, a fake one for fast UI
tests in lemlab.engine.fake, a remote one (OpenAI-compatible servers) in lemlab.engine.remote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


@dataclass(frozen=True)
class Sampler:
    """Decoding settings. temperature 0 means greedy (the published runs used greedy, 1024 tokens)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def as_dict(self) -> dict[str, float | int]:
        d: dict[str, float | int] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.seed is not None:
            d["seed"] = self.seed
        return d


@dataclass
class GenStats:
    """mlx-lm's GenerationResponse figures, plus what a UI wants (time to first token, wall time)."""

    prompt_tokens: int = 0
    prompt_tps: float = 0.0
    generation_tokens: int = 0
    generation_tps: float = 0.0
    peak_memory: float = 0.0  # GB
    finish_reason: str | None = None  # "stop" | "length" | "cancelled" | "error"
    time_to_first_token: float = 0.0  # seconds
    elapsed: float = 0.0  # seconds, request accepted -> last token
    cached_prompt_tokens: int = 0  # prompt tokens served from a reused prefix cache
    prefix_build_time: float = 0.0  # seconds of `elapsed` spent building a new prefix-cache entry
    prompt_processed: int = 0  # prompt tokens prefilled so far (set while a long prompt prefills)


@dataclass
class Chunk:
    """One streamed piece of a reply. The last chunk has done=True and final stats."""

    text: str
    stats: GenStats
    done: bool = False
    error: str | None = None


@dataclass
class LoadInfo:
    model_path: str
    adapter_path: str | None = None
    model_type: str = ""
    num_layers: int = 0
    supports_system_role: bool = True
    is_demo: bool = False  # random-weight demo model: its output is noise
    load_time: float = 0.0
    warnings: list[str] = field(default_factory=list)


@runtime_checkable
class GenerationHandle(Protocol):
    """A running generation. Iterate (sync or async) for chunks; cancel() stops it at the next token."""

    def __iter__(self) -> Iterator[Chunk]: ...

    def __aiter__(self) -> AsyncIterator[Chunk]: ...

    def cancel(self) -> None: ...

    def result(self) -> tuple[str, GenStats]:
        """Block until finished; the full text and the final stats."""
        ...


@runtime_checkable
class Engine(Protocol):
    @property
    def loaded(self) -> LoadInfo | None: ...

    def load(self, model: str, adapter: str | None = None) -> Future[LoadInfo]: ...

    def unload(self) -> Future[None]: ...

    def generate(
        self,
        messages: list[Message],
        sampler: Sampler,
        *,
        reuse_prefix: bool = False,
    ) -> GenerationHandle:
        """Start generating a reply to a chat. reuse_prefix: keep and reuse the KV cache of the
        prompt's prefix shared with earlier requests (a kernel's system turn), so a battery
        pays the kernel's prefill once; outputs must equal processing the prompt alone."""
        ...

    def shutdown(self) -> None:
        """Stop the engine; for MLX, the owning thread clears its streams before it ends."""
        ...
