"""Cancelling a run's generations: one flag for the whole run and the handles generating right
now (one for a runner on a single engine, several for a run spread over servers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lemlab.core.engine_api import GenerationHandle


class InFlight:
    """cancel() from any thread sets the flag and stops every tracked handle at its next token;
    a handle tracked after cancel() is stopped at once."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._handles: set[GenerationHandle] = set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def cancel(self) -> None:
        self.cancel_event.set()
        with self._lock:
            handles = list(self._handles)
        for h in handles:
            h.cancel()

    @contextmanager
    def tracking(self, handle: GenerationHandle) -> Iterator[GenerationHandle]:
        with self._lock:
            self._handles.add(handle)
        try:
            if self.cancel_event.is_set():
                handle.cancel()
            yield handle
        finally:
            with self._lock:
                self._handles.discard(handle)
