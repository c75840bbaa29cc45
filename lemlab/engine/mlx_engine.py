"""The MLX engine: one long-lived thread owns every MLX call (load, generate, unload), fed by a
queue, as in mlx_lm/server.py. MLX keeps per-thread streams and a thread that used MLX and then
exits can abort the process, so this thread clears its own streams before it ends
(docs/mlx-on-linux.md, trap 2), and shutdown() runs before the interpreter joins threads."""

from __future__ import annotations

import atexit
import dataclasses
import gc
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from lemlab.core.chat.messages import fold_system_into_user, plain_prompt
from lemlab.core.engine_api import Chunk, GenStats, LoadInfo, Message, Sampler
from lemlab.core.errors import LemlabError
from lemlab.engine.handle import ChunkStream
from lemlab.engine.loading import LoadedModel, load_model
from lemlab.engine.prefix_cache import MAX_ENTRIES, PrefixCache, Prepared, common_prefix_len

T = TypeVar("T")
LogitsProcessor = Callable[[Any, Any], Any]  # (tokens, logits) -> logits, as in mlx_lm


class MLXEngine:
    """Implements lemlab.core.engine_api.Engine. Extra members: count_tokens(), alive,
    engine_cpu_seconds()."""

    def __init__(self, prefix_entries: int = MAX_ENTRIES) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._lm: LoadedModel | None = None
        self._info: LoadInfo | None = None
        self._prefix = PrefixCache(prefix_entries)
        self._closed = False
        self._close_lock = threading.Lock()
        # Work not finished yet, so shutdown() can cancel it instead of running it to the end.
        self._pending: set[ChunkStream | Future[Any]] = set()
        self._cpu_clock: int | None = (
            None  # the engine thread's CPU clock, set by the thread itself
        )
        self._thread = threading.Thread(target=self._serve, name="lemlab-mlx-engine", daemon=False)
        self._thread.start()
        _register_exit_hook(self.shutdown)

    # --- public API (any thread) -------------------------------------------------------------

    @property
    def loaded(self) -> LoadInfo | None:
        return self._info

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def engine_cpu_seconds(self) -> float | None:
        """CPU time the engine thread has used so far, None where the platform can't tell (no
        per-thread clocks, e.g. macOS) or once the thread is gone. Its Python work holds the GIL
        (MLX releases it while evaluating), so the UI paces its redraws by this."""
        clock = self._cpu_clock
        if clock is None:
            return None
        try:
            return time.clock_gettime(clock)
        except OSError:
            return None

    def load(self, model: str, adapter: str | None = None) -> Future[LoadInfo]:
        return self._submit(lambda: self._load(model, adapter))

    def unload(self) -> Future[None]:
        return self._submit(self._release)

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        """Prompt length in tokens of these messages under the loaded model's chat template."""
        return self._submit(lambda: len(self._prompt_tokens(self._need_model(), messages)))

    def generate(
        self,
        messages: list[Message],
        sampler: Sampler,
        *,
        reuse_prefix: bool = False,
        logits_processors: list[LogitsProcessor] | None = None,
    ) -> ChunkStream:
        """Start a reply. logits_processors (optional, mlx_lm's shape) run on the engine thread."""
        handle = ChunkStream()
        self._track(handle)
        job = lambda: self._generate(handle, messages, sampler, reuse_prefix, logits_processors)  # noqa: E731
        if not self._enqueue(job):
            self._untrack(handle)
            handle.finish(GenStats(finish_reason="error"), error="the engine is shut down")
        return handle

    def shutdown(self, timeout: float | None = None) -> None:
        """Cancel the running reply and all queued work (queued loads get CancelledError), then
        end the engine thread, which synchronises and clears its MLX streams. Idempotent."""
        with self._close_lock:
            pending = [] if self._closed else list(self._pending)
            if not self._closed:
                self._closed = True
                self._jobs.put(None)
        for work in pending:  # outside the lock: a future's callbacks may call back in
            work.cancel()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # --- plumbing ----------------------------------------------------------------------------

    def _track(self, work: ChunkStream | Future[Any]) -> None:
        with self._close_lock:
            self._pending.add(work)

    def _untrack(self, work: ChunkStream | Future[Any]) -> None:
        with self._close_lock:
            self._pending.discard(work)

    def _enqueue(self, job: Callable[[], None]) -> bool:
        with self._close_lock:
            if self._closed:
                return False
            self._jobs.put(job)
            return True

    def _submit(self, fn: Callable[[], T]) -> Future[T]:
        fut: Future[T] = Future()
        self._track(fut)

        def job() -> None:
            self._untrack(fut)
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except LemlabError as exc:
                fut.set_exception(exc)
            except Exception as exc:  # noqa: BLE001 - callers get one line, never a dead thread
                fut.set_exception(LemlabError(f"{type(exc).__name__}: {_one_line(str(exc))}"))

        if not self._enqueue(job):
            self._untrack(fut)
            fut.set_exception(LemlabError("the engine is shut down"))
        return fut

    def _serve(self) -> None:
        # Taken here, from the running thread: pthread_getcpuclockid on a finished thread's id
        # is undefined behaviour.
        getclock = getattr(time, "pthread_getcpuclockid", None)
        if getclock is not None:
            try:
                self._cpu_clock = getclock(threading.get_ident())
            except OSError:
                pass
        try:
            while (job := self._jobs.get()) is not None:
                job()
            self._drain_after_close()
        finally:
            self._cpu_clock = None
            self._release()
            if "mlx.core" in sys.modules:
                import mlx.core as mx

                mx.synchronize()
                mx.clear_streams()

    def _drain_after_close(self) -> None:
        # Jobs can't be queued after the sentinel, but a reply queued before it must still end.
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job()

    # --- engine-thread work ------------------------------------------------------------------

    def _load(self, model: str, adapter: str | None) -> LoadInfo:
        self._release()  # free the old weights first: two large models may not fit in memory
        lm = load_model(model, adapter)
        self._lm, self._info = lm, lm.info
        return lm.info

    def _release(self) -> None:
        self._lm = None
        self._info = None
        self._prefix.clear()
        gc.collect()
        if "mlx.core" in sys.modules:
            import mlx.core as mx

            mx.clear_cache()

    def _need_model(self) -> LoadedModel:
        if self._lm is None:
            raise LemlabError("no model loaded")
        return self._lm

    def _prompt_tokens(self, lm: LoadedModel, messages: Sequence[Message]) -> list[int]:
        if not messages:
            raise LemlabError("no messages to reply to")
        tok = lm.tokenizer
        if not getattr(tok, "has_chat_template", False):
            return list(tok.encode(plain_prompt(messages)))
        msgs = list(messages) if lm.info.supports_system_role else fold_system_into_user(messages)
        return list(tok.apply_chat_template(msgs, add_generation_prompt=True))

    def _stable_prefix_len(
        self, lm: LoadedModel, messages: Sequence[Message], tokens: list[int]
    ) -> int:
        """How many leading prompt tokens do not depend on the last message's text: the prompt
        rendered again with that text emptied, compared token by token. 0 if that fails."""
        last = dict(messages[-1])
        last["content"] = ""
        try:
            other = self._prompt_tokens(lm, [*messages[:-1], last])
        except Exception:  # noqa: BLE001 - a template may reject empty text: no hint then
            return 0
        return common_prefix_len(tokens, other)

    def _generate(
        self,
        handle: ChunkStream,
        messages: list[Message],
        sampler: Sampler,
        reuse_prefix: bool,
        processors: list[LogitsProcessor] | None,
    ) -> None:
        if handle.cancelled:
            self._untrack(handle)
            handle.finish(GenStats(finish_reason="cancelled"))
            return
        stats = GenStats()
        try:
            self._stream_reply(handle, stats, messages, sampler, reuse_prefix, processors)
        except Exception as exc:  # noqa: BLE001 - errors arrive as the final chunk
            stats.finish_reason = "error"
            msg = str(exc) if isinstance(exc, LemlabError) else f"{type(exc).__name__}: {exc}"
            handle.finish(stats, error=_one_line(msg))
        finally:
            self._untrack(handle)

    def _stream_reply(
        self,
        handle: ChunkStream,
        stats: GenStats,
        messages: list[Message],
        sampler: Sampler,
        reuse_prefix: bool,
        processors: list[LogitsProcessor] | None,
    ) -> None:
        import mlx.core as mx
        from mlx_lm import stream_generate

        t0 = time.perf_counter()
        lm = self._need_model()
        if sampler.max_tokens < 1:
            raise LemlabError("max_tokens must be at least 1")
        tokens = self._prompt_tokens(lm, messages)
        if reuse_prefix:
            boundary = self._stable_prefix_len(lm, messages, tokens)
            prep = self._prefix.prepare(lm.model, tokens, boundary)
        else:
            prep = _fresh(lm, tokens)
        stats.prompt_tokens, stats.cached_prompt_tokens = len(tokens), prep.cached
        if sampler.seed is not None:
            mx.random.seed(sampler.seed)
        responses = stream_generate(
            lm.model,
            lm.tokenizer,
            mx.array(prep.rest),
            max_tokens=sampler.max_tokens,
            sampler=_make_sampler(sampler),
            prompt_cache=prep.cache,
            logits_processors=processors,
            prompt_progress_callback=_prefill_progress(handle, prep.cached),
        )
        reply: list[int] = []
        try:
            for resp in responses:
                if handle.cancelled:
                    break
                reply.append(resp.token)
                _update_stats(stats, resp, prep, t0)
                if resp.finish_reason is not None:
                    break
                handle.push(Chunk(resp.text, dataclasses.replace(stats)))
        finally:
            responses.close()
        if reuse_prefix:  # the next chat turn starts with this prompt and this reply
            self._prefix.remember(tokens + reply, prep.cache)
        if stats.finish_reason is None:
            stats.finish_reason = "cancelled"
            stats.elapsed = time.perf_counter() - t0
            handle.finish(stats)
        else:
            handle.push(Chunk(resp.text, dataclasses.replace(stats), done=True))


def _fresh(lm: LoadedModel, tokens: list[int]) -> Prepared:
    from mlx_lm.models.cache import make_prompt_cache

    return Prepared(make_prompt_cache(lm.model), tokens, 0, 0, 0.0)


def _prefill_progress(handle: ChunkStream, cached: int) -> Callable[[int, int], None]:
    """mlx-lm's prompt_progress_callback: how far the prompt's prefill is (cached tokens
    included), kept on the handle for a UI to show before token one."""

    def progress(done: int, total: int) -> None:
        handle.prefilled = (cached + done, cached + total)

    return progress


def _make_sampler(sampler: Sampler) -> Callable[[Any], Any]:
    from mlx_lm.sample_utils import make_sampler

    if sampler.greedy:
        return make_sampler(temp=0.0)
    top_p = sampler.top_p if 0.0 < sampler.top_p < 1.0 else 0.0  # 1.0 means "off"
    return make_sampler(temp=sampler.temperature, top_p=top_p)


def _update_stats(stats: GenStats, resp: Any, prep: Prepared, t0: float) -> None:
    now = time.perf_counter()
    if stats.generation_tokens == 0:
        stats.time_to_first_token = now - t0
        # Prefill speed over what was actually processed: a new prefix entry plus the rest.
        rest = len(prep.rest)
        seconds = prep.build_time + (rest / resp.prompt_tps if resp.prompt_tps else 0.0)
        stats.prompt_tps = (prep.built + rest) / seconds if seconds > 0 else 0.0
        stats.prefix_build_time = prep.build_time  # the A/B file reports it apart from time_s
    stats.generation_tokens = resp.generation_tokens
    stats.generation_tps = resp.generation_tps
    stats.peak_memory = resp.peak_memory
    stats.finish_reason = resp.finish_reason
    stats.elapsed = now - t0


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0] if lines else "unknown error"


_EXIT_HOOKS: list[weakref.WeakMethod[Callable[[], None]]] = []
_EXIT_LOCK = threading.Lock()


def _register_exit_hook(fn: Callable[[], None]) -> None:
    """Run fn (a bound method, held weakly) once the main thread has ended, before the
    interpreter joins non-daemon threads: plain atexit would run after that join, i.e. never,
    while the engine thread waits for work. A daemon thread joins the main thread (public API;
    threading._register_atexit, which concurrent.futures uses, is private)."""
    if not threading.main_thread().is_alive():  # registered during shutdown: too late to watch
        atexit.register(fn)
        return
    with _EXIT_LOCK:
        _EXIT_HOOKS.append(weakref.WeakMethod(fn))
        if len(_EXIT_HOOKS) == 1:
            threading.Thread(target=_run_exit_hooks, name="lemlab-exit-hooks", daemon=True).start()


def _run_exit_hooks() -> None:
    threading.main_thread().join()
    with _EXIT_LOCK:
        hooks = list(_EXIT_HOOKS)
    for ref in reversed(hooks):
        hook = ref()
        if hook is not None:
            hook()
