"""Servers that misbehave, scripted on 127.0.0.1: replies of the wrong shape, keep-alive comments
with no data, replies that ignore max_tokens, error bodies that echo the API key. Every request
ends (an error chunk or a cut reply), no message carries a credential, and `lemlab ab` exits with
one line instead of hanging. Every scripted loop is bounded and stops by itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lemlab.core.engine_api import Sampler
from lemlab.core.remote.endpoints import Endpoint, EndpointError, EndpointUnreachable
from lemlab.engine.remote import RemoteEngine, RemoteGeneration, redact

KEY = "sk-misbehave-7f3a9c2e51"
MSGS = [{"role": "user", "content": "hello"}]
WAIT = 20.0  # seconds any single request may take in these tests before it counts as a hang


class Script(BaseHTTPRequestHandler):
    mode = "ok"
    posts = 0

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, obj: object) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse_head(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

    def _event(self, obj: object) -> None:
        self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.mode == "echo-status":  # not HTTP at all: the raw line echoes the header
            self.wfile.write(f"HTTP/9 what {self.headers.get('Authorization')}\r\n\r\n".encode())
            return
        if self.mode != "trickle-list":
            return self._json(200, {"object": "list", "data": [{"id": "m"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(300):  # one byte per 0.1 s: each read is quick, the whole never ends
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:
        type(self).posts += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization", "")
        mode = self.mode
        try:
            if mode == "usage-list":
                self._json(
                    200,
                    {
                        "choices": [{"message": {"content": "fine"}}],
                        "usage": {"prompt_tokens": [1], "completion_tokens": "two"},
                    },
                )
            elif mode == "choices-object":
                self._json(200, {"choices": {"message": {"content": "x"}}})
            elif mode == "stream-choices-object":
                self._sse_head()
                self._event({"choices": {"0": {"delta": {"content": "x"}}}})
            elif mode == "content-number":
                self._json(200, {"choices": [{"message": {"content": 42}}]})
            elif mode == "deep":
                self._json(200, b"[" * 100_000 + b"]" * 100_000)
            elif mode == "keepalive":
                self._sse_head()
                for _ in range(600):  # 30 s at most, far beyond any deadline used below
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    time.sleep(0.05)
            elif mode == "trickle":  # real data, slowly: only the overall deadline stops it
                self._sse_head()
                for _ in range(600):
                    self._event({"choices": [{"delta": {"content": "a"}, "finish_reason": None}]})
                    time.sleep(0.05)
            elif mode == "flood":  # ignores max_tokens: up to ~40 MB unless the client hangs up
                self._sse_head()
                piece = {"choices": [{"delta": {"content": "z" * 1000}, "finish_reason": None}]}
                line = f"data: {json.dumps(piece)}\n\n".encode()
                for _ in range(40_000):
                    self.wfile.write(line)
            elif mode == "flood-one-event":  # the whole oversized reply in one SSE line
                self._sse_head()
                self._event({"choices": [{"delta": {"content": "w" * 3_000_000}}]})
            elif mode == "flood-json":
                self._json(200, {"choices": [{"message": {"content": "y" * 5_000_000}}]})
            elif mode == "echo-401":
                self._json(401, {"error": {"message": f"rejected header Authorization: {auth}"}})
            elif mode == "echo-stream":
                self._sse_head()
                self._event({"error": {"message": f"upstream saw {auth} and {body.get('model')}"}})
            else:
                self._json(
                    200, {"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}]}
                )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: what the deadline and the caps are for


@pytest.fixture()
def server() -> Iterator[tuple[str, type[Script]]]:
    handler = type("S", (Script,), {"mode": "ok", "posts": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _engine(url: str, monkeypatch: pytest.MonkeyPatch, **kw: object) -> RemoteEngine:
    monkeypatch.setenv("LEMLAB_MISBEHAVE_KEY", KEY)
    ep = Endpoint(url=url, name="s", api_key_env="LEMLAB_MISBEHAVE_KEY", **kw)  # type: ignore[arg-type]
    engine = RemoteEngine({"s": ep})
    engine.load("endpoint:s#m").result(timeout=10)
    return engine


def _failure(handle: RemoteGeneration) -> EndpointError | None:
    """The request's EndpointError (`error` is its one line, as on every handle)."""
    return handle.failure


def _finish(handle: object, limit: float = WAIT) -> tuple[str, object]:
    """handle.result() on a helper thread: a hang fails the test instead of blocking it."""
    box: dict[str, object] = {}
    t = threading.Thread(target=lambda: box.update(r=handle.result()), daemon=True)  # type: ignore[attr-defined]
    t.start()
    t.join(limit)
    assert "r" in box, "the request never finished"
    return box["r"]  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("choices-object", "choices is not a list"),
        ("stream-choices-object", "choices is not a list"),
        ("content-number", "is not a string"),
        ("deep", "nested too deeply"),
    ],
)
def test_wrong_shape_fails_the_request_for_good(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch, mode: str, says: str
) -> None:
    url, handler = server
    handler.mode = mode
    handle = _engine(url, monkeypatch).generate(MSGS, Sampler(max_tokens=4))
    text, stats = _finish(handle)
    assert stats.finish_reason == "error" and text == ""  # type: ignore[attr-defined]
    assert isinstance(_failure(handle), EndpointError) and not _failure(handle).retryable
    assert says in str(_failure(handle)) and "Error" not in str(_failure(handle))  # no class names


def test_usage_that_is_not_a_number_is_ignored(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = server
    handler.mode = "usage-list"
    handle = _engine(url, monkeypatch).generate(MSGS, Sampler(max_tokens=4))
    text, stats = _finish(handle)
    assert text == "fine" and _failure(handle) is None
    assert stats.prompt_tokens == 0 and stats.generation_tokens == 1  # type: ignore[attr-defined]


def test_keepalive_comments_without_data_time_out(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = server
    handler.mode = "keepalive"
    handle = _engine(url, monkeypatch, timeout=1.0).generate(MSGS, Sampler(max_tokens=4))
    _, stats = _finish(handle)
    assert stats.finish_reason == "error"  # type: ignore[attr-defined]
    assert isinstance(_failure(handle), EndpointUnreachable) and _failure(handle).retryable
    assert "no data for 1 s" in str(_failure(handle))


def test_a_model_list_that_trickles_forever_fails_the_load(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = server
    handler.mode = "trickle-list"
    ep = Endpoint(url=url, name="s", deadline=1.0)
    future = RemoteEngine({"s": ep}).load("endpoint:s#m")
    with pytest.raises(EndpointUnreachable, match="no complete answer within 1 s"):
        future.result(timeout=WAIT)


def test_overall_deadline_stops_a_trickling_reply(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = server
    handler.mode = "trickle"
    engine = _engine(url, monkeypatch, deadline=1.0)
    handle = engine.generate(MSGS, Sampler(max_tokens=100_000))
    text, stats = _finish(handle)
    assert stats.finish_reason == "error" and text.startswith("a")  # type: ignore[attr-defined]
    assert isinstance(_failure(handle), EndpointUnreachable) and _failure(handle).retryable
    assert "no complete reply within 1 s" in str(_failure(handle))


@pytest.mark.parametrize("mode", ["flood", "flood-one-event", "flood-json"])
def test_reply_ignoring_max_tokens_is_cut(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    url, handler = server
    handler.mode = mode
    handle = _engine(url, monkeypatch).generate(MSGS, Sampler(max_tokens=8))
    text, stats = _finish(handle)
    if mode == "flood":  # what came is kept, cut at the cap, like a reply that hit its limit
        assert stats.finish_reason == "length" and 0 < len(text) <= 8 * 128 + 4096  # type: ignore[attr-defined]
        assert set(text) == {"z"}
    elif mode == "flood-one-event":  # one line past the budget is not read whole, not parsed
        assert stats.finish_reason == "length" and text == ""  # type: ignore[attr-defined]
    else:  # a whole JSON body past the cap is not read at all
        assert stats.finish_reason == "error" and "ignore max_tokens" in str(_failure(handle))


@pytest.mark.parametrize("mode", ["echo-401", "echo-stream"])
def test_key_echoed_by_the_server_is_redacted(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    url, handler = server
    handler.mode = mode
    handle = _engine(url, monkeypatch).generate(MSGS, Sampler(max_tokens=4))
    _finish(handle)
    last = list(handle)[-1]
    assert last.error and KEY not in last.error and KEY not in str(_failure(handle))
    assert "Bearer [redacted]" in last.error  # the server's words are kept, the key is not


def test_key_echoed_in_a_broken_status_line_is_redacted(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = server
    handler.mode = "echo-status"
    monkeypatch.setenv("LEMLAB_MISBEHAVE_KEY", KEY)
    ep = Endpoint(url=url, name="s", api_key_env="LEMLAB_MISBEHAVE_KEY")
    with pytest.raises(EndpointUnreachable) as info:
        RemoteEngine({"s": ep}).load("endpoint:s#m").result(timeout=WAIT)
    assert "not an HTTP reply" in str(info.value) and KEY not in str(info.value)


def test_userinfo_echoed_by_the_server_is_redacted(
    server: tuple[str, type[Script]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = server
    engine = RemoteEngine({})
    engine.load("openai:" + url.replace("http://", "http://ann:hunter2-pw@") + "#m").result(
        timeout=10
    )
    handler.mode = "echo-401"
    handle = engine.generate(MSGS, Sampler(max_tokens=4))
    _finish(handle)
    message = str(_failure(handle))
    assert "hunter2-pw" not in message and "YW5uOmh1bnRlcjItcHc=" not in message  # base64
    assert "Basic [redacted]" in message


def test_redact_covers_key_userinfo_and_credentials_in_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEMLAB_MISBEHAVE_KEY", KEY)
    ep = Endpoint(url="http://h/v1", api_key_env="LEMLAB_MISBEHAVE_KEY", userinfo="bob:s3cret-pw")
    out = redact(f"key={KEY} pw=s3cret-pw see http://eve:other@x/y Token abc.def", ep)
    assert out == "key=[redacted] pw=[redacted] see http://x/y Token [redacted]"


# ---------------------------------------------------------------- through `lemlab ab`


def _battery(tmp_path: Path) -> Path:
    path = tmp_path / "battery.json"
    path.write_text(json.dumps([{"id": "P1", "domain": "Care", "prompt": "hi?"}]))
    return path


def _ab(url: str, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    args = [
        sys.executable,
        "-m",
        "lemlab",
        "ab",
        "--model",
        f"openai:{url}#m",
        "--prompts",
        str(_battery(tmp_path)),
        "--output",
        str(tmp_path / "out.jsonl"),
        "--max-tokens",
        "4",
        "--retry-delay",
        "0",
        *extra,
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_ab_on_a_wrong_shape_exits_with_one_line(
    server: tuple[str, type[Script]], tmp_path: Path
) -> None:
    url, handler = server
    handler.mode = "choices-object"
    proc = _ab(url, tmp_path)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    errors = [ln for ln in err.splitlines() if ln.startswith("lemlab: error: ")]
    assert proc.returncode == 3, err  # ab's status for a run stopped part way (resumable)
    assert len(errors) == 1 and "choices is not a list" in errors[0] and "Traceback" not in err
    assert handler.posts == 1  # not retried: the same reply would come again


@pytest.mark.slow
def test_second_ctrl_c_ends_ab_on_a_server_that_never_answers(
    server: tuple[str, type[Script]], tmp_path: Path
) -> None:
    url, handler = server
    handler.mode = "keepalive"  # endless comments; the default read timeout and deadline are long
    proc = _ab(url, tmp_path)
    try:
        t0 = time.monotonic()
        while handler.posts == 0:
            assert time.monotonic() - t0 < 60 and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # cancels the request in flight, keeps what is written
        time.sleep(0.3)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode in (3, 130), err  # stopped (resumable) or interrupted
    assert "Ctrl+C again" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "out.jsonl") or (tmp_path / "out.jsonl").read_text() == ""


def _lemlab(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lemlab", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", ["chat", "distill"])
def test_chat_and_distill_end_with_one_line_on_a_wrong_shape(
    server: tuple[str, type[Script]], tmp_path: Path, command: str
) -> None:
    url, handler = server
    handler.mode = "stream-choices-object"
    if command == "chat":
        args = ["chat", "--model", f"openai:{url}#m", "--prompt", "hi", "--max-tokens", "4"]
    else:
        args = [
            "distill",
            "--model",
            f"openai:{url}#m",
            "--prompts",
            str(_battery(tmp_path)),
            "--output",
            str(tmp_path / "d.jsonl"),
            "--samples",
            "2",
            "--retry-delay",
            "0",
        ]
    proc = _lemlab(args)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("lemlab: error: ")]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr
    assert "choices is not a list" in errors[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_echoed_key_never_reaches_stderr(
    server: tuple[str, type[Script]], tmp_path: Path, lemlab_home: Path
) -> None:
    from lemlab.core.paths import get_paths

    url, handler = server
    config = get_paths().config_file
    assert lemlab_home in config.parents
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[endpoints.gw]\nurl = "{url}"\nmodel = "m"\napi_key_env = "LEMLAB_GW_KEY"\n'
    )
    handler.mode = "echo-401"
    proc = _lemlab(["chat", "--model", "endpoint:gw", "--prompt", "hi"], LEMLAB_GW_KEY=KEY)
    assert proc.returncode != 0 and "HTTP 401" in proc.stderr, proc.stderr
    assert KEY not in proc.stderr + proc.stdout and "Bearer [redacted]" in proc.stderr
