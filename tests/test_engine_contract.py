"""Every engine and handle implements the whole contract in lemlab.core.engine_api, so callers
use it without probing (no getattr), and `error` means one thing: the failure's one line."""

from __future__ import annotations

import socket

import pytest

from lemlab.core.engine_api import GenerationHandle, Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.remote.endpoints import Endpoint, EndpointUnreachable
from lemlab.engine.fake import FakeEngine, FakeHandle
from lemlab.engine.handle import ChunkStream
from lemlab.engine.remote import RemoteEngine, RemoteGeneration

MSGS = [{"role": "user", "content": "name three colours"}]


def _members(protocol: type) -> set[str]:
    own = {n for n in vars(protocol) if not n.startswith("_")}
    return own | {"__iter__", "__aiter__"} if protocol is GenerationHandle else own


@pytest.mark.parametrize("cls", [ChunkStream, FakeHandle, RemoteGeneration])
def test_handles_declare_every_member(cls: type) -> None:
    assert {"error", "take", "wait", "raise_for_error", "result", "cancel"} <= _members(
        GenerationHandle
    )
    assert [m for m in sorted(_members(GenerationHandle)) if not hasattr(cls, m)] == []


def test_every_handle_has_the_fields_and_one_meaning_of_error() -> None:
    fake = _loaded_fake(generate_error="fake failure").generate(MSGS, Sampler(max_tokens=5))
    dead = Endpoint(url=f"http://127.0.0.1:{_closed_port()}/v1", name="dead", timeout=2.0)
    remote = RemoteGeneration(dead, {"messages": MSGS, "max_tokens": 5, "stream": True})
    for handle in (fake, remote):
        text, stats = handle.result()
        assert stats.finish_reason == "error" and handle.prefilled is None
        assert isinstance(handle.error, str) and handle.error == list(handle)[-1].error
    assert "prefilled" in GenerationHandle.__annotations__
    assert isinstance(remote.failure, EndpointUnreachable) and remote.failure.retryable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns: connections are refused


def _loaded_fake(**kw: object) -> FakeEngine:
    engine = FakeEngine(length=12, **kw)  # type: ignore[arg-type]
    engine.load("fake/model").result(timeout=10)
    return engine


def test_fake_handle_reads_in_batches_and_twice() -> None:
    engine = _loaded_fake(delay=0.002)
    handle = engine.generate(MSGS, Sampler(max_tokens=50))
    assert isinstance(handle, GenerationHandle)
    assert handle.wait(10) is True
    batch = handle.take(0)
    assert batch[-1].done and handle.take(len(batch), timeout=0.01) == []
    text, stats = handle.result()
    assert text == "".join(c.text for c in batch) and text.startswith("**Reply** to “name three")
    assert [c.text for c in handle] == [c.text for c in batch]  # a second reader sees it all
    assert stats.finish_reason == "stop" and handle.error is None
    assert handle.raise_for_error()[0] == text


def test_fake_failure_is_one_line_everywhere() -> None:
    engine = _loaded_fake(generate_error="the fake broke")
    handle = engine.generate(MSGS, Sampler(max_tokens=50))
    text, stats = handle.result()
    assert stats.finish_reason == "error" and handle.error == "the fake broke"
    assert list(handle)[-1].error == "the fake broke"
    with pytest.raises(LemlabError, match="the fake broke"):
        handle.raise_for_error()


def test_fake_engine_counts_and_clock() -> None:
    engine = _loaded_fake()
    assert engine.count_tokens(MSGS).result(timeout=10) == 3 + 4  # three words and the turn's frame
    assert engine.engine_cpu_seconds() is None


def test_remote_engine_cannot_count_and_takes_no_cpu() -> None:
    engine = RemoteEngine({})
    with pytest.raises(LemlabError, match="token counts need a local model"):
        engine.count_tokens(MSGS).result(timeout=10)
    assert engine.engine_cpu_seconds() == 0.0
