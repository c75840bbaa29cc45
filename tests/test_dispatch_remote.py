"""The dispatcher over real mlx_lm.server processes: two endpoints, a server killed and restarted
mid-run, and no server at all."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lemlab.core.engine_api import GenStats, Sampler
from lemlab.core.remote.dispatch import DispatchError, RetryPolicy, run_units
from lemlab.engine.mlx_server import LocalServer, start_mlx_server
from lemlab.engine.remote import RemoteEngine, complete, remote_worker

pytestmark = pytest.mark.slow

FAST = RetryPolicy(max_attempts=6, base_delay=0.1, max_delay=1.0, max_probes=40)


@pytest.fixture()
def servers(tiny_model: Path, tmp_path: Path) -> Iterator[list[LocalServer]]:
    started: list[LocalServer] = []
    hub = tmp_path / "hub"
    hub.mkdir()

    def make(n: int) -> list[LocalServer]:
        for i in range(n):
            log = tmp_path / f"server{i}.log"
            started.append(
                start_mlx_server(tiny_model, log_path=log, env={"HF_HUB_CACHE": str(hub)})
            )
        return started

    yield make  # type: ignore[misc]
    for srv in started:
        srv.stop()


def _engine(srv: LocalServer) -> RemoteEngine:
    engine = RemoteEngine({})
    engine.load(srv.spec).result(timeout=30)
    return engine


def _ask(engine: RemoteEngine, unit: int) -> tuple[str, GenStats]:
    return complete(
        engine, [{"role": "user", "content": f"probe number {unit}"}], Sampler(max_tokens=8)
    )


def test_two_endpoints_share_the_units(servers) -> None:  # type: ignore[no-untyped-def]
    a, b = servers(2)
    served: Counter[str] = Counter()

    def ask(engine: RemoteEngine, unit: int) -> tuple[str, GenStats]:
        served[engine.endpoint.url] += 1  # type: ignore[union-attr]
        return _ask(engine, unit)

    workers = [remote_worker(_engine(a), ask), remote_worker(_engine(b), ask)]
    got = dict(run_units(range(10), workers, retry=FAST))
    assert sorted(got) == list(range(10))
    assert all(stats.finish_reason in ("stop", "length") for _, stats in got.values())
    assert served[a.url] >= 1 and served[b.url] >= 1 and sum(served.values()) == 10
    # greedy: the same prompt gives the same text whichever server answered
    again = dict(run_units([3], [remote_worker(_engine(b), _ask)], retry=FAST))
    assert again[3][0] == got[3][0]


def test_server_killed_and_restarted_mid_run(servers) -> None:  # type: ignore[no-untyped-def]
    (srv,) = servers(1)
    engine = _engine(srv)
    calls: Counter[int] = Counter()
    failures: list[str] = []

    def ask(engine: RemoteEngine, unit: int) -> tuple[str, GenStats]:
        calls[unit] += 1
        try:
            return _ask(engine, unit)
        except Exception as e:
            failures.append(str(e))
            raise

    restarter: threading.Thread | None = None
    yielded: list[int] = []
    deadline = time.monotonic() + 120
    for unit, (_text, stats) in run_units(
        range(16), [remote_worker(engine, ask, max_in_flight=2)], retry=FAST
    ):
        yielded.append(unit)
        assert stats.finish_reason in ("stop", "length")
        if len(yielded) == 4:
            srv.kill()
            restarter = threading.Thread(target=lambda: (time.sleep(0.3), srv.start()))
            restarter.start()
        assert time.monotonic() < deadline
    assert restarter is not None
    restarter.join(timeout=60)
    assert sorted(yielded) == list(range(16))  # every unit exactly once
    assert failures and sum(calls.values()) > 16  # there were retries
    assert all("\n" not in f for f in failures)


def test_no_server_gives_a_clear_error_after_bounded_retries(servers) -> None:  # type: ignore[no-untyped-def]
    (srv,) = servers(1)
    engine = _engine(srv)
    srv.stop()
    policy = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, max_probes=3)
    t0 = time.monotonic()
    with pytest.raises(DispatchError) as info:
        list(run_units(range(4), [remote_worker(engine, _ask)], retry=policy))
    msg = str(info.value)
    assert "\n" not in msg and "connection refused" in msg and srv.url in msg
    assert time.monotonic() - t0 < 30
