"""RemoteEngine against a real mlx_lm.server (subprocess on 127.0.0.1) serving the tiny model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lemlab.core.engine_api import Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.remote.endpoints import Endpoint, EndpointHTTPError
from lemlab.engine.mlx_server import LocalServer
from lemlab.engine.remote import RemoteEngine

pytestmark = pytest.mark.slow

MSGS = [{"role": "system", "content": "Answer kindly."}, {"role": "user", "content": "Why share?"}]
NO_EOS = {"logit_bias": {"1": -1000.0, "5": -1000.0}}  # the tiny model's <eos>, <end_of_turn>


def _loaded(tiny_server: LocalServer, spec: str | None = None, **kw: object) -> RemoteEngine:
    engine = RemoteEngine({}, **kw)  # type: ignore[arg-type]
    engine.load(spec or f"openai:{tiny_server.url}").result(timeout=30)
    return engine


def test_load_picks_the_served_model(tiny_server: LocalServer, tiny_model: Path) -> None:
    engine = RemoteEngine({})
    info = engine.load(f"openai:{tiny_server.url}").result(timeout=30)
    assert info.model_path == f"openai:{tiny_server.url}#{tiny_model.resolve()}"
    assert info.supports_system_role and info.model_type == "remote" and info.warnings == []
    assert engine.loaded is info


def test_stream_chat(tiny_server: LocalServer) -> None:
    engine = _loaded(tiny_server, extra_body=NO_EOS)
    handle = engine.generate(MSGS, Sampler(max_tokens=12))
    chunks = list(handle)
    text, stats = handle.result()
    assert len([c for c in chunks if c.text]) >= 3 and chunks[-1].done and not chunks[-1].error
    assert "".join(c.text for c in chunks) == text and text
    assert stats.finish_reason == "length" and stats.generation_tokens == 12
    assert stats.prompt_tokens > 5
    assert 0 < stats.time_to_first_token <= stats.elapsed
    assert stats.generation_tps > 0
    # intermediate chunks carry running stats
    assert [c.stats.generation_tokens for c in chunks if c.text] == sorted(
        c.stats.generation_tokens for c in chunks if c.text
    )


async def test_async_stream(tiny_server: LocalServer) -> None:
    engine = _loaded(tiny_server, extra_body=NO_EOS)
    handle = engine.generate(MSGS, Sampler(max_tokens=6))
    texts = [c.text async for c in handle]
    assert "".join(texts) == handle.result()[0] and len(texts) >= 2


def test_greedy_is_repeatable_and_streaming_matches_non_streaming(tiny_server: LocalServer) -> None:
    engine = _loaded(tiny_server, extra_body=NO_EOS)
    first = engine.generate(MSGS, Sampler(max_tokens=10)).result()[0]
    second = engine.generate(MSGS, Sampler(max_tokens=10)).result()[0]
    assert first == second and first
    plain = RemoteEngine(
        {"p": Endpoint(url=tiny_server.url, name="p", stream=False)}, extra_body=NO_EOS
    )
    plain.load("endpoint:p").result(timeout=30)
    text, stats = plain.generate(MSGS, Sampler(max_tokens=10)).result()
    assert text == first and stats.generation_tokens == 10 and stats.finish_reason == "length"


def test_cancel_mid_stream(tiny_server: LocalServer) -> None:
    engine = _loaded(tiny_server, extra_body=NO_EOS)
    handle = engine.generate(MSGS, Sampler(max_tokens=50_000))
    seen = 0
    deadline = time.monotonic() + 30
    for _chunk in handle:
        seen += 1
        if seen == 3:
            handle.cancel()
        assert time.monotonic() < deadline
    text, stats = handle.result()
    assert stats.finish_reason == "cancelled" and handle.failure is None
    assert 3 <= stats.generation_tokens < 50_000
    # the server is still fine afterwards
    assert engine.generate(MSGS, Sampler(max_tokens=3)).result()[1].finish_reason in (
        "stop",
        "length",
    )


def test_http_error_becomes_an_error_chunk(tiny_server: LocalServer) -> None:
    engine = _loaded(tiny_server, f"openai:{tiny_server.url}#/no/such/model")
    assert (
        engine.loaded is not None and "not in the server's model list" in engine.loaded.warnings[0]
    )
    handle = engine.generate(MSGS, Sampler(max_tokens=4))
    last = list(handle)[-1]
    assert last.done and last.error and "\n" not in last.error and "HTTP 404" in last.error
    assert isinstance(handle.failure, EndpointHTTPError) and not handle.failure.retryable


def test_adapter_per_request(tiny_server: LocalServer, tiny_adapter: Path) -> None:
    base = _loaded(tiny_server, extra_body=NO_EOS)
    base_text = base.generate(MSGS, Sampler(max_tokens=10)).result()[0]
    tuned = RemoteEngine({}, extra_body=NO_EOS)
    info = tuned.load(f"openai:{tiny_server.url}", adapter=str(tiny_adapter)).result(timeout=60)
    assert info.adapter_path == str(tiny_adapter)
    tuned_text = tuned.generate(MSGS, Sampler(max_tokens=10)).result()[0]
    assert tuned_text != base_text
    assert tuned.generate(MSGS, Sampler(max_tokens=10)).result()[0] == tuned_text
    # the base engine's requests carry no adapter: the server switches back
    assert base.generate(MSGS, Sampler(max_tokens=10)).result()[0] == base_text


def test_missing_adapter_fails_at_load(tiny_server: LocalServer, tmp_path: Path) -> None:
    engine = RemoteEngine({})
    with pytest.raises(LemlabError) as info:
        engine.load(f"openai:{tiny_server.url}", adapter=str(tmp_path / "nope")).result(timeout=30)
    assert "cannot use adapter" in str(info.value) and "does not exist" in str(info.value)
    assert engine.loaded is None
