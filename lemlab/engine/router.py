"""An Engine that routes by model spec: local folders and Hugging Face ids go to an MLXEngine,
`openai:<url>[#model]` and `endpoint:<name>[#model]` specs to a RemoteEngine.

Each engine is created on first use, so a remote-only session never imports mlx. Whichever
engine loaded last is the active one: `generate`, `unload` and `loaded` follow it. After a load
succeeds the other engine's model is unloaded, so a local model does not sit in memory while a
server answers. `shutdown()` shuts both down; the MLX engine clears its streams on its own
thread (docs/mlx-on-linux.md, trap 2), so call it from the thread that created the router,
after the UI has stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any

from lemlab.core.engine_api import Engine, GenerationHandle, GenStats, LoadInfo, Message, Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.remote.endpoints import Endpoint, is_remote_spec
from lemlab.engine.handle import ChunkStream
from lemlab.engine.remote import RemoteEngine


def _mlx_engine() -> Engine:
    from lemlab.engine.mlx_engine import MLXEngine  # mlx is imported here, on first local load

    return MLXEngine()


class EngineRouter:
    """Implements lemlab.core.engine_api.Engine over a local and a remote engine.

    `local_factory` makes the local engine (default: MLXEngine; tests and the UI demo pass a
    FakeEngine); `endpoints` are the named endpoints (default: config.toml's, read per load);
    `extra_body` adds fields to every remote request."""

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint] | None = None,
        *,
        local_factory: Callable[[], Engine] = _mlx_engine,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._local_factory = local_factory
        self._extra = dict(extra_body or {})
        self._local: Engine | None = None
        self._remote: RemoteEngine | None = None
        self._active: Engine | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"EngineRouter(active={self._active!r})"

    # -- what is there -------------------------------------------------------------------------

    @property
    def loaded(self) -> LoadInfo | None:
        active = self._active
        return active.loaded if active is not None else None

    @property
    def active(self) -> Engine | None:
        """The engine that loaded last (None before any load succeeded)."""
        return self._active

    @property
    def local(self) -> Engine | None:
        """The local engine, or None while no local model was ever asked for."""
        return self._local

    @property
    def remote(self) -> RemoteEngine | None:
        return self._remote

    @property
    def is_remote(self) -> bool:
        return self._active is not None and self._active is self._remote

    def engine_cpu_seconds(self) -> float | None:
        """The active engine's thread CPU time (see MLXEngine). A remote server generates in
        another process, so it takes nothing from this one: 0."""
        active = self._active
        if active is not None and active is self._remote:
            return 0.0
        return active.engine_cpu_seconds() if active is not None else None

    def engine_for(self, model: str) -> Engine:
        """The engine that serves this spec, created now if needed."""
        with self._lock:
            if self._closed:
                raise LemlabError("the engine is shut down")
            if is_remote_spec(model):
                if self._remote is None:
                    self._remote = RemoteEngine(self._endpoints, extra_body=self._extra)
                return self._remote
            if self._local is None:
                self._local = self._local_factory()
            return self._local

    # -- the Engine protocol -------------------------------------------------------------------

    def load(self, model: str, adapter: str | None = None) -> Future[LoadInfo]:
        outer: Future[LoadInfo] = Future()
        try:
            target = self.engine_for(model)
        except Exception as exc:  # noqa: BLE001 - delivered through the future, like a load error
            outer.set_exception(exc)
            return outer
        inner = target.load(model, adapter)
        # Resolve our future only after `active` is switched: a caller that waits on it and
        # then generates must reach the engine that just loaded.
        inner.add_done_callback(lambda f: self._loaded(f, target, outer))
        return outer

    def _loaded(self, inner: Future[LoadInfo], target: Engine, outer: Future[LoadInfo]) -> None:
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is None:
            with self._lock:
                previous, self._active = self._active, target
            if previous is not None and previous is not target and previous.loaded is not None:
                previous.unload()  # free the other model; not waited for
        _settle(outer, inner.result() if exc is None else None, exc)

    def unload(self) -> Future[None]:
        active = self._active
        if active is None:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        return active.unload()

    def generate(
        self,
        messages: list[Message],
        sampler: Sampler,
        *,
        reuse_prefix: bool = False,
        **options: Any,
    ) -> GenerationHandle:
        """Start a reply on the active engine. `options` (e.g. logits_processors) are extras of
        the local engine; a remote model refuses them."""
        active = self._active
        if active is None:
            return _failed("no model loaded")
        if options and active is self._remote:
            names = ", ".join(sorted(options))
            raise LemlabError(f"{names}: only a local model takes these (the model is remote)")
        return active.generate(messages, sampler, reuse_prefix=reuse_prefix, **options)

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        """Prompt length in tokens (local models only: a server does not say before replying)."""
        active = self._active
        if active is None:
            failed: Future[int] = Future()
            failed.set_exception(LemlabError("token counts need a local model"))
            return failed
        return active.count_tokens(messages)  # a server's future fails with the same line

    def shutdown(self) -> None:
        """Shut both engines down (idempotent)."""
        with self._lock:
            self._closed = True
            engines = [e for e in (self._remote, self._local) if e is not None]
            self._active = None
        for engine in engines:
            engine.shutdown()


def _settle(future: Future[LoadInfo], result: LoadInfo | None, exc: BaseException | None) -> None:
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except InvalidStateError:  # the caller cancelled its wait (e.g. a newer load in the UI)
        pass


def _failed(message: str) -> ChunkStream:
    handle = ChunkStream()
    handle.finish(GenStats(finish_reason="error"), error=message)
    return handle
