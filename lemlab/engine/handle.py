"""A generation in flight: the engine thread pushes chunks, callers read them from any thread
(sync iteration) or from an asyncio loop (async iteration). No mlx here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

from lemlab.core.engine_api import Chunk, GenStats
from lemlab.core.errors import LemlabError


class ChunkStream:
    """Implements lemlab.core.engine_api.GenerationHandle. Chunks are buffered, so any number
    of readers see the whole reply, whenever they start reading."""

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []
        self._cond = threading.Condition()
        self._cancel = threading.Event()
        self._done = threading.Event()  # set once, so waiting for the end wakes up once
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Chunk]]] = []
        # (prompt tokens prefilled, of how many), set by the engine between prefill steps of a
        # long prompt; a field, not a chunk, so readers waiting for token one are not woken.
        self.prefilled: tuple[int, int] | None = None

    # --- engine side -------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        with self._cond:
            return bool(self._chunks) and self._chunks[-1].done

    def push(self, chunk: Chunk) -> None:
        with self._cond:
            if self._chunks and self._chunks[-1].done:
                return  # already finished (e.g. failed before it started)
            self._chunks.append(chunk)
            if chunk.done:
                self._done.set()
            self._cond.notify_all()
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            _post(loop, queue, chunk)

    def finish(self, stats: GenStats, error: str | None = None) -> None:
        self.push(Chunk(text="", stats=stats, done=True, error=error))

    # --- caller side -------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop at the next token; the final chunk then has finish_reason 'cancelled'."""
        self._cancel.set()

    def __iter__(self) -> Iterator[Chunk]:
        i = 0
        while True:
            with self._cond:
                while i >= len(self._chunks):
                    self._cond.wait()
                chunk = self._chunks[i]
            i += 1
            yield chunk
            if chunk.done:
                return

    def take(self, start: int, timeout: float | None = None) -> list[Chunk]:
        """The chunks from index `start` on, waiting up to `timeout` only if there are none yet.
        Lets a reader collect a batch per display tick instead of waking up for every token
        (each wake-up takes the GIL from the engine thread)."""
        with self._cond:
            if len(self._chunks) <= start:
                self._cond.wait_for(lambda: len(self._chunks) > start, timeout)
            return self._chunks[start:]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the reply has finished or `timeout` passed; True if finished."""
        return self._done.wait(timeout)

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk] = asyncio.Queue()
        entry = (loop, queue)
        with self._cond:
            for chunk in self._chunks:  # what arrived before this reader started
                queue.put_nowait(chunk)
            self._subscribers.append(entry)
        try:
            while True:
                chunk = await queue.get()
                yield chunk
                if chunk.done:
                    return
        finally:
            with self._cond:
                self._subscribers.remove(entry)

    def result(self) -> tuple[str, GenStats]:
        """Block until finished; the full text and the final stats (errors are in stats and the
        last chunk: finish_reason 'error')."""
        text = []
        last: Chunk | None = None
        for chunk in self:
            text.append(chunk.text)
            last = chunk
        assert last is not None
        return "".join(text), last.stats

    def raise_for_error(self) -> tuple[str, GenStats]:
        """result(), but a failed generation raises a LemlabError with its one line."""
        text, stats = self.result()
        if stats.finish_reason == "error":
            raise LemlabError(self.error or "generation failed")
        return text, stats

    @property
    def error(self) -> str | None:
        """The error of a finished generation, else None."""
        with self._cond:
            return self._chunks[-1].error if self._chunks and self._chunks[-1].done else None


def _post(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Chunk], chunk: Chunk) -> None:
    try:
        loop.call_soon_threadsafe(queue.put_nowait, chunk)
    except RuntimeError:
        pass  # that reader's loop is closed: nobody is listening any more
