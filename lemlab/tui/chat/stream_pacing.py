"""How a streaming reply reaches the screen: chunks read in batches, one display per interval,
the interval paced so drawing does not slow the engine down.

Why pacing: the MLX engine runs on its own thread, but its Python work (building each token's
graph) needs the GIL, and so does every redraw. Measured on the tiny model (bench/chat_bench.py),
one display costs ~8 ms of UI-thread time and the engine loses about that much. How much the
engine loses depends on how much of its time it spends holding the GIL: a tiny model at 1,000
tok/s is nearly all Python; a real model spends most of each token inside MLX (GIL released).
So the UI may draw more often the less the engine needs the GIL. No textual or mlx imports here."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lemlab.core.engine_api import Chunk, GenerationHandle

FLUSH_SECONDS = float(os.environ.get("LEMLAB_FLUSH_SECONDS", "0.03"))  # fastest: ~30 displays/s
MAX_FLUSH_SECONDS = 0.5  # slowest: 2 displays a second, whatever drawing costs
UI_BUDGET = 0.02  # the share of its speed the engine may lose to drawing
MAX_UI_SHARE = 0.2  # UI-thread share of wall time never exceeded, even for a GIL-free engine


@dataclass
class DisplayLog:
    """When the current reply reached the screen (monotonic clock). The chat bench reads it."""

    sent: float = 0.0
    first: float | None = None  # first display
    first_tokens: int = 0  # tokens in the first display
    last: float | None = None
    tokens: int = 0
    displays: int = 0
    ui_cpu: tuple[float, float] = (0.0, 0.0)  # UI-thread CPU time at the first and last display

    def shown(self, tokens: int) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        if self.first is None:
            self.first, self.first_tokens, self.ui_cpu = now, tokens, (cpu, cpu)
        self.last, self.ui_cpu = now, (self.ui_cpu[0], cpu)
        self.tokens += tokens
        self.displays += 1


class Pacer:
    """The interval between displays. After each display the UI thread's CPU time since the
    previous one, divided by the share of wall time it may use, gives the next interval. That
    share is UI_BUDGET over the engine's GIL share, estimated from the engine thread's CPU time
    (`engine_cpu`, None when unknown: then the engine is assumed to need the GIL throughout)."""

    def __init__(self, engine_cpu: Callable[[], float | None]) -> None:
        self.engine_cpu = engine_cpu
        self.interval = (
            FLUSH_SECONDS  # carried from reply to reply: the last cost is the best guess
        )
        self.engine_share: float | None = None
        self._clock: tuple[float, float, float | None] | None = None

    def start(self) -> None:
        self._clock = None

    def displayed(self) -> float:
        """Call on the UI thread after each display; returns the new interval."""
        clock = (time.monotonic(), time.thread_time(), self.engine_cpu())
        if self._clock is not None:
            self.engine_share = engine_share(self._clock, clock)
            self.interval = _interval(clock[1] - self._clock[1], self.engine_share)
        self._clock = clock
        return self.interval


def engine_share(
    before: tuple[float, float, float | None], after: tuple[float, float, float | None]
) -> float | None:
    wall = after[0] - before[0]
    if before[2] is None or after[2] is None or wall <= 0:
        return None
    return min(1.0, max(0.0, (after[2] - before[2]) / wall))


def next_interval(
    before: tuple[float, float, float | None], after: tuple[float, float, float | None]
) -> float:
    """(wall, UI CPU, engine CPU) at two displays -> seconds until the next one."""
    return _interval(after[1] - before[1], engine_share(before, after))


def _interval(ui_seconds: float, share: float | None) -> float:
    allowed = min(MAX_UI_SHARE, UI_BUDGET / max(1.0 if share is None else share, 1e-6))
    return min(MAX_FLUSH_SECONDS, max(FLUSH_SECONDS, ui_seconds / allowed))


def defer_full_gc() -> Callable[[], None]:
    """Hold off full (oldest-generation) garbage collections; returns the undo. A full
    collection walks the app's whole heap with the GIL held (~70 ms measured), a stall the
    engine thread waits out mid-reply. Young generations are still collected meanwhile."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, 1_000_000)
    return lambda: gc.set_threshold(young, middle, old)


def chunk_batches(handle: GenerationHandle, interval: Callable[[], float]) -> Iterator[list[Chunk]]:
    """The reply's chunks in batches, at most one per interval() seconds; the first one and the
    last one as soon as they arrive. Read with take()/wait(), not by iterating: each wake-up
    per token takes the GIL the engine thread needs."""
    seen = 0
    while True:
        batch = handle.take(seen, None)
        seen += len(batch)
        yield batch
        if batch[-1].done:
            return
        handle.wait(interval())  # returns early when the reply ends
