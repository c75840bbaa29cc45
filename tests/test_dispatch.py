"""The dispatcher with plain Python workers: concurrency bounds, retries, give-up, cancel."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from lemlab.core.remote.dispatch import DispatchError, RetryPolicy, Worker, is_retryable, run_units
from lemlab.core.remote.endpoints import EndpointHTTPError, EndpointUnreachable

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, down_after=2, max_probes=3)


class Recorder:
    """A worker body that sleeps a little and records how many calls overlap."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls: Counter[int] = Counter()

    def __call__(self, unit: int) -> int:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.calls[unit] += 1
        time.sleep(self.delay)
        with self.lock:
            self.now -= 1
        return unit * 10


def collect(it) -> dict:  # type: ignore[no-untyped-def]
    out: dict = {}
    deadline = time.monotonic() + 30
    for unit, result in it:
        assert unit not in out, f"unit {unit} yielded twice"
        out[unit] = result
        assert time.monotonic() < deadline
    return out


def test_every_unit_once_with_bounded_concurrency() -> None:
    a, b = Recorder(), Recorder()
    workers = [Worker("a", a, max_in_flight=3), Worker("b", b, max_in_flight=1)]
    out = collect(run_units(range(40), workers, retry=FAST))
    assert out == {u: u * 10 for u in range(40)}
    assert a.peak <= 3 and b.peak <= 1
    assert a.peak >= 2  # the bound is used, not just respected
    assert sum(a.calls.values()) + sum(b.calls.values()) == 40
    assert sum(b.calls.values()) >= 1


def test_retryable_failures_are_retried_until_success() -> None:
    tries: Counter[int] = Counter()

    def flaky(unit: int) -> int:
        tries[unit] += 1
        if tries[unit] < 3 and unit % 2 == 0:
            raise EndpointUnreachable("http://x/v1: connection refused")
        return unit

    # No probe function: while down, single units are the probes (each failure counts).
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_probes=20)
    out = collect(run_units(range(10), [Worker("w", flaky, 2)], retry=policy))
    assert sorted(out) == list(range(10))
    assert all(tries[u] == (3 if u % 2 == 0 else 1) for u in range(10))


def test_a_failed_unit_moves_to_another_worker() -> None:
    seen: list[tuple[str, int]] = []

    def broken(unit: int) -> str:
        seen.append(("broken", unit))
        raise ConnectionResetError("reset by peer")

    def good(unit: int) -> str:
        seen.append(("good", unit))
        time.sleep(0.005)
        return "ok"

    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_probes=50)
    workers = [Worker("broken", broken, 1, probe=lambda: broken(-1)), Worker("good", good, 1)]
    out = collect(run_units(range(8), workers, retry=policy))
    assert set(out) == set(range(8)) and set(out.values()) == {"ok"}
    # Each unit that hit the broken worker was finished by the good one.
    for _, unit in [s for s in seen if s[0] == "broken" and s[1] >= 0]:
        assert ("good", unit) in seen
    assert len([s for s in seen if s[0] == "broken" and s[1] >= 0]) <= 2  # down after 2 fails


def test_non_retryable_error_stops_with_one_line() -> None:
    def bad(unit: int) -> int:
        if unit == 3:
            raise EndpointHTTPError(400, "http://x/v1: HTTP 400: prompt too long\nsecond line")
        return unit

    got: list[int] = []
    with pytest.raises(DispatchError) as info:
        for unit, _ in run_units(range(6), [Worker("w", bad, 1)], retry=FAST):
            got.append(unit)
    msg = str(info.value)
    assert "\n" not in msg and "unit 3 failed" in msg and "HTTP 400" in msg
    assert info.value.unit == 3 and isinstance(info.value.cause, EndpointHTTPError)
    assert 3 not in got and got == [0, 1, 2]


def test_gives_up_after_bounded_attempts() -> None:
    calls = Counter[int]()

    def down(unit: int) -> int:
        calls[unit] += 1
        raise EndpointHTTPError(503, "http://x/v1: HTTP 503: overloaded")

    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_probes=100)
    t0 = time.monotonic()
    with pytest.raises(DispatchError) as info:
        collect(run_units([7], [Worker("w", down, 1)], retry=policy))
    assert "after 3 tries" in str(info.value) and "HTTP 503" in str(info.value)
    assert calls[7] == 3
    assert time.monotonic() - t0 < 10


def test_dead_workers_end_the_run() -> None:
    def refused(unit: int) -> int:
        raise ConnectionRefusedError("connection refused")

    def probe() -> None:
        raise ConnectionRefusedError("connection refused")

    policy = RetryPolicy(max_attempts=50, base_delay=0.01, max_delay=0.02, max_probes=3)
    with pytest.raises(DispatchError) as info:
        collect(run_units(range(5), [Worker("a", refused, 1, probe=probe)], retry=policy))
    assert "no worker reachable" in str(info.value) and "a: connection refused" in str(info.value)


def test_probe_brings_a_worker_back() -> None:
    state = {"up": False, "probes": 0}

    def do(unit: int) -> int:
        if not state["up"]:
            raise ConnectionRefusedError("refused")
        return unit

    def probe() -> None:
        state["probes"] += 1
        if state["probes"] >= 3:
            state["up"] = True
        else:
            raise ConnectionRefusedError("refused")

    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_probes=10)
    out = collect(run_units(range(4), [Worker("w", do, 2, probe=probe)], retry=policy))
    assert sorted(out) == [0, 1, 2, 3] and state["probes"] == 3


def test_cancel_stops_scheduling() -> None:
    cancel = threading.Event()
    rec = Recorder(delay=0.02)
    got = []
    for unit, _ in run_units(range(100), [Worker("w", rec, 2)], retry=FAST, cancel=cancel):
        got.append(unit)
        if len(got) == 3:
            cancel.set()
    assert 3 <= len(got) <= 5  # the units in flight at cancel time may still finish
    assert sum(rec.calls.values()) <= 5


def test_retryable_classification() -> None:
    assert is_retryable(ConnectionRefusedError())
    assert is_retryable(TimeoutError())
    assert is_retryable(EndpointUnreachable("x"))
    assert is_retryable(EndpointHTTPError(502, "x"))
    assert is_retryable(EndpointHTTPError(429, "x"))
    assert not is_retryable(EndpointHTTPError(404, "x"))
    assert not is_retryable(ValueError("x"))


def test_bad_arguments() -> None:
    with pytest.raises(Exception, match="no workers"):
        run_units([1], [])
    with pytest.raises(Exception, match="max_in_flight"):
        run_units([1], [Worker("w", lambda u: u, 0)])
