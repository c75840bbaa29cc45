"""RemoteEngine against a small local HTTP server that records what it receives: the API key
header, the request body, and server behaviours a real mlx_lm.server will not show on demand
(HTTP 500, 401, a stream cut mid-reply, a JSON answer to a streaming request)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lemlab.core.engine_api import GenerationHandle, Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.remote.endpoints import (
    Endpoint,
    EndpointError,
    EndpointHTTPError,
    EndpointUnreachable,
)
from lemlab.engine.mlx_server import free_port
from lemlab.engine.remote import RemoteEngine

KEY = "sk-lemlab-test-0123456789"
MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


class Recorder(BaseHTTPRequestHandler):
    mode = "sse"
    seen: list[dict] = []

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, obj: object, ctype: str = "application/json") -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "headers": dict(self.headers)})
        if self.mode == "401":
            self._send(401, {"error": {"message": "invalid api key"}})
        elif self.mode == "nolist":  # what mlx_lm.server sends when it has no HF cache folder
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
        else:
            self._send(200, {"object": "list", "data": [{"id": "fake-model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.mode == "500":
            return self._send(500, {"error": {"message": "model crashed\nsecond line"}})
        if self.mode == "json" or not body.get("stream"):
            return self._send(
                200,
                {
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "length",
                            "message": {"role": "assistant", "content": "whole reply"},
                        }
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 2},
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b": keepalive 3/7\n\n")
        pieces = ["al", "pha", " beta"] if self.mode != "cut" else ["al"]
        for p in pieces:
            ev = {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(ev)}\n\n".encode())
            self.wfile.flush()
        if self.mode == "cut":
            return  # connection closes with no finish_reason and no [DONE]
        fin = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        usage = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}}
        for ev in (fin, usage):
            self.wfile.write(f"data: {json.dumps(ev)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture()
def fake() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("H", (Recorder,), {"mode": "sse", "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _engine(url: str, **kw: object) -> tuple[RemoteEngine, Endpoint]:
    ep = Endpoint(url=url, name="fake", api_key_env="LEMLAB_TEST_KEY", **kw)  # type: ignore[arg-type]
    return RemoteEngine({"fake": ep}), ep


def test_stream_with_key_from_environment(
    fake: tuple[str, type[Recorder]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url, handler = fake
    monkeypatch.setenv("LEMLAB_TEST_KEY", KEY)
    engine, _ = _engine(url)
    info = engine.load("endpoint:fake").result(timeout=10)
    handle = engine.generate(MSGS, Sampler(max_tokens=9, seed=3))
    assert isinstance(handle, GenerationHandle)
    chunks = list(handle)
    assert [c.text for c in chunks] == ["al", "pha", " beta", ""] and chunks[-1].done
    text, stats = handle.result()
    assert text == "alpha beta"
    assert (stats.prompt_tokens, stats.generation_tokens, stats.finish_reason) == (11, 3, "stop")
    assert stats.elapsed >= stats.time_to_first_token > 0
    # The key went out in the header of every request, and nowhere else.
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in handler.seen)
    post = handler.seen[-1]
    assert post["body"]["model"] == "fake-model" and post["body"]["seed"] == 3
    assert post["body"]["max_tokens"] == 9 and post["body"]["stream"] is True
    assert KEY not in json.dumps(post["body"])
    surfaces = [
        repr(engine),
        repr(info),
        repr(engine.endpoint),
        repr(chunks),
        repr(stats),
        caplog.text,
        info.model_path,
    ]
    assert not any(KEY in s for s in surfaces)
    assert info.model_path == "endpoint:fake#fake-model" and info.supports_system_role


async def test_async_iteration(
    fake: tuple[str, type[Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEMLAB_TEST_KEY", KEY)
    engine, _ = _engine(fake[0])
    engine.load("endpoint:fake").result(timeout=10)
    handle = engine.generate(MSGS, Sampler(max_tokens=5))
    texts = [c.text async for c in handle]
    assert "".join(texts) == "alpha beta"
    assert handle.result()[1].finish_reason == "stop"


def test_missing_key_variable_is_a_clear_error(fake: tuple[str, type[Recorder]]) -> None:
    engine, _ = _engine(fake[0])
    with pytest.raises(EndpointError) as info:
        engine.load("endpoint:fake").result(timeout=10)
    assert "LEMLAB_TEST_KEY is not set" in str(info.value)
    assert fake[1].seen == []  # nothing was sent without the key


def test_rejected_key(fake: tuple[str, type[Recorder]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEMLAB_TEST_KEY", KEY)
    fake[1].mode = "401"
    engine, _ = _engine(fake[0])
    with pytest.raises(EndpointHTTPError) as info:
        engine.load("endpoint:fake").result(timeout=10)
    assert "HTTP 401: invalid api key" in str(info.value) and KEY not in str(info.value)
    assert not info.value.retryable


def test_userinfo_becomes_basic_auth_and_stays_hidden(fake: tuple[str, type[Recorder]]) -> None:
    url, handler = fake
    spec = "openai:" + url.replace("http://", "http://bob:pw-42@") + "#fake-model"
    engine = RemoteEngine({})
    info = engine.load(spec).result(timeout=10)
    text, _ = engine.generate(MSGS, Sampler(max_tokens=4)).result()
    assert text == "alpha beta"
    assert handler.seen[-1]["headers"]["Authorization"] == "Basic Ym9iOnB3LTQy"
    assert "pw-42" not in info.model_path and "bob" not in repr(engine)


def test_non_streaming_endpoint_and_json_fallback(fake: tuple[str, type[Recorder]]) -> None:
    url, handler = fake
    engine = RemoteEngine({"plain": Endpoint(url=url, name="plain", stream=False)})
    engine.load("endpoint:plain").result(timeout=10)
    text, stats = engine.generate(MSGS, Sampler(max_tokens=4)).result()
    assert (
        handler.seen[-1]["body"]["stream"] is False
        and "stream_options" not in handler.seen[-1]["body"]
    )
    assert (text, stats.finish_reason, stats.generation_tokens, stats.prompt_tokens) == (
        "whole reply",
        "length",
        2,
        7,
    )
    handler.mode = "json"  # a server that ignores stream=true
    engine2 = RemoteEngine({})
    engine2.load(f"openai:{url}").result(timeout=10)
    text2, _ = engine2.generate(MSGS, Sampler(max_tokens=4)).result()
    assert handler.seen[-1]["body"]["stream"] is True and text2 == "whole reply"


def test_http_500_is_a_retryable_error_chunk(fake: tuple[str, type[Recorder]]) -> None:
    url, handler = fake
    engine = RemoteEngine({})
    engine.load(f"openai:{url}").result(timeout=10)
    handler.mode = "500"
    handle = engine.generate(MSGS, Sampler(max_tokens=4))
    last = list(handle)[-1]
    assert last.done and last.error and "\n" not in last.error and "HTTP 500" in last.error
    assert last.stats.finish_reason == "error"
    assert isinstance(handle.failure, EndpointHTTPError) and handle.failure.retryable
    assert handle.error == last.error  # `error` is the one line on every handle, not the exception
    with pytest.raises(EndpointHTTPError):
        handle.raise_for_error()


def test_stream_cut_mid_reply_is_retryable(fake: tuple[str, type[Recorder]]) -> None:
    url, handler = fake
    engine = RemoteEngine({})
    engine.load(f"openai:{url}").result(timeout=10)
    handler.mode = "cut"
    handle = engine.generate(MSGS, Sampler(max_tokens=4))
    text, stats = handle.result()
    assert text == "al" and stats.finish_reason == "error"
    assert isinstance(handle.failure, EndpointUnreachable) and handle.failure.retryable


def test_connection_refused() -> None:
    engine = RemoteEngine({})
    port = free_port()
    with pytest.raises(EndpointUnreachable) as info:
        engine.load(f"openai:http://127.0.0.1:{port}/v1#m").result(timeout=20)
    assert str(info.value) == f"http://127.0.0.1:{port}/v1: connection refused"
    assert info.value.retryable
    with pytest.raises(LemlabError, match="no remote model loaded"):
        engine.generate(MSGS, Sampler())


def test_server_without_a_model_list(fake: tuple[str, type[Recorder]]) -> None:
    url, handler = fake
    handler.mode = "nolist"
    engine = RemoteEngine({})
    info = engine.load(f"openai:{url}").result(timeout=10)
    assert info.warnings == ["the server did not list its models; using its default model"]
    handler.mode = "sse"
    assert engine.generate(MSGS, Sampler(max_tokens=3)).result()[0] == "alpha beta"
    assert "model" not in handler.seen[-1]["body"]  # the server picks its default
    handler.mode = "nolist"
    with pytest.raises(LemlabError, match="lists no models; name the model"):
        RemoteEngine({}).load(f"openai:{url}", adapter="/some/adapter").result(timeout=10)


def test_remote_reply_reaches_the_chat_pane_reader_whole(fake: tuple[str, type[Recorder]]) -> None:
    """The chat pane reads every handle with take()/wait() (stream_pacing.chunk_batches): a
    server's reply arrives in batches holding each chunk once, in order, ending at the last."""
    from lemlab.tui.chat.stream_pacing import chunk_batches

    url, _handler = fake
    engine = RemoteEngine({})
    engine.load(f"openai:{url}").result(timeout=10)
    handle = engine.generate(MSGS, Sampler(max_tokens=9))
    batches = list(chunk_batches(handle, lambda: 0.01))
    chunks = [c for batch in batches for c in batch]
    assert all(batches) and [c.text for c in chunks] == ["al", "pha", " beta", ""]
    assert chunks[-1].done and not any(c.done for c in chunks[:-1]) and handle.wait(0) is True
