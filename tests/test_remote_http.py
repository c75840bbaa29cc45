"""The HTTP side of RemoteEngine (httpx): a base URL's query string reaches the server, the proxy
named by HTTP_PROXY is used (a recording proxy on 127.0.0.1), connections are kept alive across
requests, and cancel still stops a request at once on a reused connection whose server has not
answered yet."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from lemlab.core.engine_api import Sampler
from lemlab.core.remote.endpoints import Endpoint, parse_model_spec
from lemlab.engine.remote import RemoteEngine

MSGS = [{"role": "user", "content": "hello"}]
REPLY = {"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}]}


class Server(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: replies carry Content-Length
    seen: list[tuple[str, str, int]] = []  # (method, path, client port)
    stall = threading.Event()  # set: POSTs wait (bounded) before answering
    release = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, obj: object) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.client_address[1]))
        self._send({"object": "list", "data": [{"id": "m"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(("POST", self.path, self.client_address[1]))
        if self.stall.is_set():
            self.release.wait(15)  # bounded: the test ends it sooner
        try:
            self._send(REPLY)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Proxy(BaseHTTPRequestHandler):
    """A forward proxy for plain http: records each request line, then relays the request."""

    lines: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def _relay(self) -> None:
        self.lines.append(self.requestline)
        target = urlsplit(self.path)  # absolute-form: http://host:port/path?query
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("proxy-connection", "connection")
        }
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            upstream.request(self.command, path, body=body, headers=headers)
            resp = upstream.getresponse()
            data = resp.read()
        finally:
            upstream.close()
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.getheader("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _relay
    do_POST = _relay


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture()
def server() -> Iterator[tuple[str, type[Server]]]:
    handler = type(
        "S", (Server,), {"seen": [], "stall": threading.Event(), "release": threading.Event()}
    )
    gen = _serve(handler)
    base, _ = next(gen)
    yield base, handler
    handler.release.set()
    next(gen, None)


@pytest.fixture()
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_query_string_of_the_base_url_reaches_the_server(
    server: tuple[str, type[Server]], no_proxy_env: None
) -> None:
    base, handler = server
    spec = f"openai:{base}/v1?api-version=2024-06-01#m"
    assert parse_model_spec(spec, {}).url == f"{base}/v1?api-version=2024-06-01"
    engine = RemoteEngine({})
    engine.load(spec).result(timeout=10)
    engine.generate(MSGS, Sampler(max_tokens=4)).result()
    paths = [path for _, path, _ in handler.seen]
    assert paths == [
        "/v1/models?api-version=2024-06-01",
        "/v1/chat/completions?api-version=2024-06-01",
    ]


def test_requests_go_through_the_proxy_of_the_environment(
    server: tuple[str, type[Server]], no_proxy_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, handler = server
    proxy_handler = type("P", (Proxy,), {"lines": []})
    gen = _serve(proxy_handler)
    proxy, _ = next(gen)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        engine = RemoteEngine({})
        engine.load(f"openai:{base}/v1?k=v#m").result(timeout=10)
        text, _ = engine.generate(MSGS, Sampler(max_tokens=4)).result()
    finally:
        next(gen, None)
    assert text == "fine"
    assert proxy_handler.lines == [
        f"GET {base}/v1/models?k=v HTTP/1.1",
        f"POST {base}/v1/chat/completions?k=v HTTP/1.1",
    ]
    assert [path for _, path, _ in handler.seen] == ["/v1/models?k=v", "/v1/chat/completions?k=v"]


def test_connections_are_kept_alive(server: tuple[str, type[Server]], no_proxy_env: None) -> None:
    base, handler = server
    engine = RemoteEngine({"s": Endpoint(url=f"{base}/v1", name="s", stream=False)})
    engine.load("endpoint:s#m").result(timeout=10)
    for _ in range(3):
        assert engine.generate(MSGS, Sampler(max_tokens=4)).result()[0] == "fine"
    assert len(handler.seen) == 4 and len({port for _, _, port in handler.seen}) == 1


def test_cancel_stops_a_request_waiting_on_a_reused_connection(
    server: tuple[str, type[Server]], no_proxy_env: None
) -> None:
    base, handler = server
    engine = RemoteEngine({"s": Endpoint(url=f"{base}/v1", name="s", stream=False)})
    engine.load("endpoint:s#m").result(timeout=10)  # opens the connection the POST reuses
    handler.stall.set()
    handle = engine.generate(MSGS, Sampler(max_tokens=4))
    t0 = time.monotonic()
    while len(handler.seen) < 2:  # the request is in and the server sits on it
        assert time.monotonic() - t0 < 10
        time.sleep(0.02)
    time.sleep(0.1)
    t1 = time.monotonic()
    handle.cancel()
    assert handle.wait(5), "cancel did not wake the blocked read"
    assert time.monotonic() - t1 < 2
    text, stats = handle.result()
    assert (text, stats.finish_reason, handle.failure) == ("", "cancelled", None)
    assert len({port for _, _, port in handler.seen}) == 1  # it was the kept-alive connection
    handler.stall.clear()
    handler.release.set()
    assert engine.generate(MSGS, Sampler(max_tokens=4)).result()[0] == "fine"  # the pool recovers
