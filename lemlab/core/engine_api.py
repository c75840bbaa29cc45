"""The contract between the engine (the one owner of MLX) and its callers (CLI, TUI, runners).

Headless: no mlx here. The real engine lives in lemlab.engine.mlx_engine, a fake one for fast UI
tests in lemlab.engine.fake, a remote one (OpenAI-compatible servers) in lemlab.engine.remote.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from lemlab.core.errors import LemlabError

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


class SamplerError(LemlabError, ValueError):
    """Sampling settings that no engine can use (NaN, inf, a seed out of range). A ValueError
    too, so the forms that catch ValueError word it in their one line."""


@dataclass(frozen=True)
class Sampler:
    """Decoding settings. temperature 0 means greedy (the published runs used greedy, 1024 tokens)."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None

    def __post_init__(self) -> None:
        # NaN passes every `x < 0` check: refuse it here, whichever form or file it came from.
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise SamplerError(f"{name} must be a finite number (got {value!r})")
        if self.seed is not None and not (type(self.seed) is int and 0 <= self.seed < 2**64):
            raise SamplerError(f"seed must be a whole number from 0 to 2**64-1 (got {self.seed!r})")

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

    # (prompt tokens prefilled, of how many) while a long prompt prefills; None where the engine
    # does not say (a server) or before prefill starts. A field, so no reader is woken for it.
    prefilled: tuple[int, int] | None

    def __iter__(self) -> Iterator[Chunk]: ...

    def __aiter__(self) -> AsyncIterator[Chunk]: ...

    def cancel(self) -> None: ...

    def result(self) -> tuple[str, GenStats]:
        """Block until finished; the full text and the final stats (a failure is in the stats,
        finish_reason 'error', and in `error`)."""
        ...

    def raise_for_error(self) -> tuple[str, GenStats]:
        """result(), but a failed generation raises: a LemlabError whose message is `error`, or
        the engine's own subclass of it (a server's EndpointError says whether a retry helps)."""
        ...

    @property
    def error(self) -> str | None:
        """Why a finished generation failed, in one line (the last chunk's error); None while it
        runs and when it did not fail."""
        ...

    def take(self, start: int, timeout: float | None = None) -> list[Chunk]:
        """The chunks from index `start` on, waiting up to `timeout` (None: for ever) only if
        there are none yet. A reader collects a batch per display tick instead of waking up for
        every token."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the reply has finished or `timeout` passed; True if it finished."""
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

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        """Prompt length in tokens under the loaded model's chat template; the future fails with
        a LemlabError where the engine cannot tell before replying (a server)."""
        ...

    def engine_cpu_seconds(self) -> float | None:
        """CPU time this process's generating thread has used so far (the UI paces redraws by
        it); 0.0 for a server, which generates in another process; None where it is unknown."""
        ...

    def shutdown(self) -> None:
        """Stop the engine; for MLX, the owning thread clears its streams before it ends."""
        ...
