"""Spread work units over several workers (engines), each with a bounded number of requests in
flight; retry retryable failures with exponential backoff, possibly on another worker; yield each
unit's result once, as it completes.

Headless and generic: a Worker is a name, a `do(unit) -> result` function and a capacity. A
worker that fails `down_after` times in a row is marked down and re-probed (its `probe()`, or one
unit when it has none) after a backoff; one that never comes back is given up. The caller's loop
runs between results, so it can write each result to disk before asking for the next.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from lemlab.core.errors import LemlabError

U = TypeVar("U")
R = TypeVar("R")


def is_retryable(exc: BaseException) -> bool:
    """An exception's own `retryable` flag (lemlab.core.remote.endpoints errors carry one), else True
    for connection errors and timeouts."""
    flag = getattr(exc, "retryable", None)
    if flag is not None:
        return bool(flag)
    return isinstance(exc, ConnectionError | TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # tries per unit before the run fails
    base_delay: float = 1.0  # seconds before the first retry; doubles each time
    max_delay: float = 30.0
    jitter: float = 0.2  # up to +20% random, so workers do not retry in lockstep
    down_after: int = 2  # consecutive retryable failures that mark a worker down
    max_probes: int = 8  # failed re-probes in a row before a worker is given up
    retryable: Callable[[BaseException], bool] = is_retryable

    def delay(self, n: int) -> float:
        """Backoff before the n-th retry (n >= 1)."""
        base = min(self.max_delay, self.base_delay * 2.0 ** max(0, n - 1))
        return base * (1.0 + random.random() * self.jitter)


@dataclass
class Worker(Generic[U, R]):
    """One engine as the dispatcher sees it. `do` runs on a pool thread of this worker; it should
    raise a retryable exception for connection trouble and return a result otherwise."""

    name: str
    do: Callable[[U], R]
    max_in_flight: int = 1
    probe: Callable[[], object] | None = None  # cheap health check (e.g. GET /v1/models)


class DispatchError(LemlabError):
    """A unit failed for good (not retryable, or out of attempts), or no worker is left."""

    def __init__(self, message: str, unit: object = None, cause: BaseException | None = None):
        super().__init__(message)
        self.unit = unit
        self.cause = cause


@dataclass
class _Task:
    unit: Any
    attempts: int = 0
    ready_at: float = 0.0
    last_worker: int | None = None


@dataclass
class _WorkerState:
    worker: Worker[Any, Any]
    pool: ThreadPoolExecutor
    in_flight: int = 0
    fails: int = 0  # consecutive retryable failures
    down_until: float | None = None  # None = up
    probes_failed: int = 0
    probing: bool = False
    dead: bool = False
    last_error: str = ""
    done: int = field(default=0)

    def capacity(self, now: float) -> int:
        if self.dead or self.probing:
            return 0
        if self.down_until is not None:
            # No probe function: after the pause, one real unit is the probe.
            if self.worker.probe is None and now >= self.down_until and self.in_flight == 0:
                return 1
            return 0
        return self.worker.max_in_flight - self.in_flight


def _one_line(exc: BaseException) -> str:
    # Words, not class names, for an exception without a message (a bare TimeoutError()).
    fallback = (
        "timed out"
        if isinstance(exc, TimeoutError)
        else "connection failed"
        if isinstance(exc, ConnectionError)
        else "failed without a message"
    )
    text = " ".join(str(exc).split()) or fallback
    return text[:200]


class _Dispatcher(Generic[U, R]):
    def __init__(
        self,
        units: Iterable[U],
        workers: Sequence[Worker[U, R]],
        retry: RetryPolicy,
        cancel: threading.Event,
        label: Callable[[U], str],
    ) -> None:
        if not workers:
            raise LemlabError("no workers to run on")
        for w in workers:
            if w.max_in_flight < 1:
                raise LemlabError(f"worker {w.name}: max_in_flight must be at least 1")
        if retry.max_attempts < 1:
            raise LemlabError("retry policy: max_attempts must be at least 1")
        self.retry, self.cancel, self.label = retry, cancel, label
        self.pending = [_Task(u) for u in units]
        self.states = [
            _WorkerState(w, ThreadPoolExecutor(max(1, w.max_in_flight), f"dispatch-{w.name}"))
            for w in workers
        ]
        self.events: queue.Queue[tuple[str, int, _Task | None, Any]] = queue.Queue()
        self.outstanding = len(self.pending)
        self.fatal: DispatchError | None = None
        self.stats_retries = 0

    # -- main loop (runs in the caller's thread, as a generator)

    def run(self) -> Iterator[tuple[U, R]]:
        try:
            while self.outstanding > 0:
                if (self.cancel.is_set() or self.fatal) and self.pending:
                    self.outstanding -= len(self.pending)
                    self.pending.clear()
                    continue
                self._schedule(time.monotonic())
                self._check_all_dead()
                try:
                    kind, wi, task, value = self.events.get(timeout=self._wait_time())
                except queue.Empty:
                    continue
                done = self._handle(kind, wi, task, value)
                if done is not None:
                    yield done
            if self.fatal is not None:
                raise self.fatal
        finally:
            for st in self.states:
                st.pool.shutdown(wait=False, cancel_futures=True)

    def _wait_time(self) -> float:
        now = time.monotonic()
        wakes = [t.ready_at for t in self.pending if t.ready_at > now]
        wakes += [s.down_until for s in self.states if s.down_until and s.down_until > now]
        soonest = min(wakes, default=now + 0.2) - now
        return min(max(soonest, 0.005), 0.2)  # 0.2 s bounds the reaction to `cancel`

    # -- scheduling

    def _schedule(self, now: float) -> None:
        for wi, st in enumerate(self.states):
            if st.down_until is not None and st.worker.probe is not None:
                if not st.probing and not st.dead and now >= st.down_until:
                    self._start_probe(wi, st)
        while True:
            ready = [t for t in self.pending if t.ready_at <= now]
            if not ready:
                return
            open_ = [(wi, st) for wi, st in enumerate(self.states) if st.capacity(now) > 0]
            if not open_:
                return
            wi, st = min(open_, key=lambda p: p[1].in_flight / max(1, p[1].worker.max_in_flight))
            # Prefer a unit that did not just fail on this worker (a retry goes elsewhere).
            task = next((t for t in ready if t.last_worker != wi), ready[0])
            self.pending.remove(task)
            self._submit(wi, st, task)

    def _submit(self, wi: int, st: _WorkerState, task: _Task) -> None:
        task.attempts += 1
        st.in_flight += 1

        def call() -> None:
            try:
                self.events.put(("ok", wi, task, st.worker.do(task.unit)))
            except BaseException as e:  # reported to the loop, which decides
                self.events.put(("fail", wi, task, e))

        st.pool.submit(call)

    def _start_probe(self, wi: int, st: _WorkerState) -> None:
        st.probing = True
        probe = st.worker.probe
        assert probe is not None

        def call() -> None:
            try:
                probe()
                self.events.put(("probe", wi, None, None))
            except BaseException as e:
                self.events.put(("probe", wi, None, e))

        threading.Thread(target=call, name=f"dispatch-probe-{st.worker.name}", daemon=True).start()

    # -- results

    def _handle(self, kind: str, wi: int, task: _Task | None, value: Any) -> tuple[U, R] | None:
        st = self.states[wi]
        if kind == "probe":
            self._probe_done(st, value)
            return None
        assert task is not None
        st.in_flight -= 1
        if kind == "ok":
            st.fails, st.down_until, st.probes_failed = 0, None, 0
            st.done += 1
            self.outstanding -= 1
            return (task.unit, value)
        self._failed(wi, st, task, value)
        return None

    def _failed(self, wi: int, st: _WorkerState, task: _Task, exc: BaseException) -> None:
        if self.cancel.is_set() or self.fatal is not None:
            self.outstanding -= 1  # stopping: failures of the last in-flight units are dropped
            return
        if not self.retry.retryable(exc):
            self._give_up(task, f"unit {self.label(task.unit)} failed: {_one_line(exc)}", exc)
            return
        st.fails += 1
        st.last_error = _one_line(exc)
        if st.fails >= self.retry.down_after or st.down_until is not None:
            self._mark_down(st)
        if task.attempts >= self.retry.max_attempts:
            msg = (
                f"unit {self.label(task.unit)} failed after {task.attempts} tries: {_one_line(exc)}"
            )
            self._give_up(task, msg, exc)
            return
        self.stats_retries += 1
        task.last_worker = wi
        task.ready_at = time.monotonic() + self.retry.delay(task.attempts)
        self.pending.append(task)

    def _mark_down(self, st: _WorkerState) -> None:
        st.probes_failed += 1 if st.down_until is not None else 0
        st.down_until = time.monotonic() + self.retry.delay(st.probes_failed + 1)
        if st.probes_failed >= self.retry.max_probes:
            st.dead = True

    def _probe_done(self, st: _WorkerState, error: BaseException | None) -> None:
        st.probing = False
        if error is None:
            st.down_until, st.fails, st.probes_failed = None, 0, 0
            return
        st.last_error = _one_line(error)
        st.probes_failed += 1
        if st.probes_failed >= self.retry.max_probes:
            st.dead = True
        else:
            st.down_until = time.monotonic() + self.retry.delay(st.probes_failed + 1)

    def _give_up(self, task: _Task, message: str, cause: BaseException) -> None:
        self.outstanding -= 1
        if self.fatal is None:
            self.fatal = DispatchError(message, task.unit, cause)
            self.fatal.__cause__ = cause

    def _check_all_dead(self) -> None:
        if self.fatal is None and all(st.dead for st in self.states) and self.pending:
            names = "; ".join(f"{st.worker.name}: {st.last_error}" for st in self.states)
            self.fatal = DispatchError(f"no worker reachable after retries ({names})")


def run_units(
    units: Iterable[U],
    workers: Sequence[Worker[U, R]],
    *,
    retry: RetryPolicy | None = None,
    cancel: threading.Event | None = None,
    label: Callable[[U], str] = repr,
) -> Iterator[tuple[U, R]]:
    """Run every unit on some worker; yield (unit, result) once per unit, in completion order.

    Raises DispatchError (one line) when a unit fails for good or every worker is given up,
    after the units already in flight have finished and been yielded. Setting `cancel` stops
    scheduling; units in flight that still succeed are yielded, then iteration ends."""
    return _Dispatcher(
        units, workers, retry or RetryPolicy(), cancel or threading.Event(), label
    ).run()
