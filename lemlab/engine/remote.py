"""An Engine that talks to an OpenAI-compatible chat completions server (mlx_lm.server, vLLM,
Ollama) over HTTP.

Pure standard library, no mlx: each request runs on a short-lived thread of its own, which is
safe here because no MLX stream is involved. The API key is read from the environment per
request (lemlab.core.remote.endpoints.api_key) and only ever placed in the Authorization header.

Why http.client and not httpx: what a run needs beyond a request is to stop one at any moment
(Ctrl+C, a deadline) from another thread: httpx's timeouts are per phase (connect, read, write,
pool), with no overall deadline, and aborting a blocked read from another thread is not part of
its documented API; shutting the socket down does both here with no new dependency (httpx is
not installed; huggingface_hub brings a fork of it, httpx2).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import socket
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from lemlab.core.engine_api import Chunk, GenStats, LoadInfo, Message, Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.remote.dispatch import Worker
from lemlab.core.remote.endpoints import (
    Endpoint,
    EndpointError,
    EndpointHTTPError,
    EndpointUnreachable,
    api_key,
    parse_model_spec,
    redact_url,
)

U = TypeVar("U")
R = TypeVar("R")

CONNECT_TIMEOUT = 10.0
ADAPTER_FIELD = "adapters"  # mlx_lm.server reads a per-request adapter path from this field
# A reply is cut (finish_reason "length") past max_tokens * these: no token is that long, so
# only a server that ignores max_tokens reaches them, and it cannot keep a run busy for minutes.
CHARS_PER_TOKEN_CAP = 128
BYTES_PER_TOKEN_CAP = 1024  # a streamed event per token carries ids and JSON around the text
LINE_CAP = 16 << 20  # longest SSE line read whole (a longer one is cut, then fails as not JSON)
LIST_CAP = 16 << 20  # the most of a GET /models body read
_AUTH_WORD = re.compile(r"\b(Bearer|Basic|Token)(\s+)[A-Za-z0-9._~+/=:-]+", re.IGNORECASE)


# ---------------------------------------------------------------- HTTP plumbing


def _headers(endpoint: Endpoint, has_body: bool) -> dict[str, str]:
    headers = {"Accept": "application/json, text/event-stream", "User-Agent": "lemlab"}
    if has_body:
        headers["Content-Type"] = "application/json"
    key = api_key(endpoint)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    elif endpoint.userinfo:
        token = base64.b64encode(endpoint.userinfo.encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return headers


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected):
        return "connection closed by the server"
    if isinstance(exc, http.client.IncompleteRead):  # its str() is its class name and counts
        return "reply cut short"
    if isinstance(exc, http.client.HTTPException):
        return f"not an HTTP reply ({_one_line(str(exc), 80)})" if str(exc) else "not an HTTP reply"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or "connection failed"


def redact(text: str, endpoint: Endpoint) -> str:
    """`text` (built from what a server sent) without the endpoint's API key, URL userinfo or
    any Authorization credential: a gateway may echo the request headers in its error body."""
    secrets: list[str] = []
    try:
        key = api_key(endpoint)
    except EndpointError:
        key = None
    if key:
        secrets.append(key)
    if endpoint.userinfo:
        secrets.append(endpoint.userinfo)
        secrets.append(base64.b64encode(endpoint.userinfo.encode()).decode())
        secrets += [part for part in endpoint.userinfo.split(":") if part]
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:  # shorter ones would blank out ordinary words
            text = text.replace(secret, "[redacted]")
    text = _AUTH_WORD.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    return redact_url(text)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _error_message(raw: bytes) -> str:
    """The message of an error body: OpenAI's {"error": {"message"}}, mlx_lm's {"error": str}."""
    text = raw.decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except ValueError:
        return _one_line(text) or "(no message)"
    err = obj.get("error", obj) if isinstance(obj, dict) else obj
    if isinstance(err, dict):
        err = err.get("message", err)
    return _one_line(str(err))


def open_request(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    read_timeout: float | None = None,
    on_connect: Callable[[http.client.HTTPConnection], None] | None = None,
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send one request; returns the open connection and a 2xx response (headers read).

    Raises EndpointUnreachable (retryable) or EndpointHTTPError (retryable when 5xx/429)."""
    parts = urlsplit(endpoint.url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "", parts.port, timeout=CONNECT_TIMEOUT)
    data = json.dumps(body).encode() if body is not None else None
    headers = _headers(endpoint, data is not None)
    try:
        conn.connect()
        if on_connect is not None:
            on_connect(conn)
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout or endpoint.timeout)
        conn.request(method, parts.path + path, body=data, headers=headers)
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as e:
        conn.close()  # a bad status line is server text: redacted like an error body
        raise EndpointUnreachable(f"{endpoint.url}: {redact(_reason(e), endpoint)}") from None
    except BaseException:
        conn.close()
        raise
    if resp.status >= 400:
        try:
            msg = _error_message(resp.read(8192))
        except (OSError, http.client.HTTPException):
            msg = str(resp.reason)
        conn.close()
        msg = redact(msg, endpoint)
        raise EndpointHTTPError(resp.status, f"{endpoint.url}: HTTP {resp.status}: {msg}")
    return conn, resp


class _Deadline:
    """Shuts the request's socket down after `seconds`, waking any blocked read: a server that
    trickles bytes resets every read timeout, so only a deadline bounds a whole request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def attach(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._sock = conn.sock
        if self.expired.is_set():
            raise TimeoutError

    def _expire(self) -> None:
        self.expired.set()
        with self._lock:
            sock = self._sock
        _shutdown(sock)

    def error(self, endpoint: Endpoint) -> EndpointUnreachable:
        return EndpointUnreachable(f"{endpoint.url}: no complete answer within {self.seconds:g} s")


def list_models(endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT) -> list[str] | None:
    """GET /models: the model ids the server lists, or None when it answers without a list
    (mlx_lm.server sends an empty 200 body when no Hugging Face cache folder exists)."""
    with _Deadline(min(endpoint.deadline, 6 * timeout)) as deadline:
        try:
            conn, resp = open_request(
                endpoint, "GET", "/models", read_timeout=timeout, on_connect=deadline.attach
            )
            try:
                raw = resp.read(LIST_CAP)
            finally:
                conn.close()
            if deadline.expired.is_set():  # the socket was shut: what came is a fragment
                raise TimeoutError
        except (OSError, http.client.HTTPException, EndpointUnreachable) as e:
            if deadline.expired.is_set():
                raise deadline.error(endpoint) from None
            if isinstance(e, EndpointUnreachable):
                raise
            raise EndpointUnreachable(f"{endpoint.url}: {_reason(e)}") from None
    try:
        data = json.loads(raw)
        return [str(m["id"]) for m in data["data"]]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def iter_sse(
    resp: http.client.HTTPResponse,
    on_line: Callable[[bytes], None] | None = None,
    line_cap: int = LINE_CAP,
) -> Iterator[str]:
    """The `data:` payloads of a server-sent-events stream, one per event; comments skipped.
    `on_line` sees every raw line (comments too), so a caller can bound what a stream costs."""
    lines: list[str] = []
    while True:
        raw = resp.readline(line_cap)
        if on_line is not None:
            on_line(raw)
        if not raw:
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
    if lines:
        yield "\n".join(lines)


# ---------------------------------------------------------------- the handle

_LIVE: weakref.WeakSet[RemoteGeneration] = weakref.WeakSet()


class _ChunkLog:
    """Append-only chunks shared by one producer thread and any number of (a)sync readers."""

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []
        self._closed = False
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def append(self, chunk: Chunk) -> None:
        with self._cond:
            self._chunks.append(chunk)
            self._closed = self._closed or chunk.done
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that reader's loop has closed
                pass

    def take(self, index: int, timeout: float | None) -> list[Chunk]:
        with self._cond:
            self._cond.wait_for(lambda: len(self._chunks) > index or self._closed, timeout)
            return self._chunks[index:]

    def wait_closed(self, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._closed, timeout)

    def since(self, index: int, wait: float = 0.0) -> tuple[list[Chunk], bool]:
        with self._cond:
            if wait and index >= len(self._chunks) and not self._closed:
                self._cond.wait(wait)
            return self._chunks[index:], self._closed

    def subscribe(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self._cond:
            self._waiters.append((loop, event))

    def unsubscribe(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self._cond:
            self._waiters.remove((loop, event))


def cancel_all() -> None:
    """Cancel every request in flight in this process (Ctrl+C: pool threads waiting on a reply
    must not keep the interpreter from exiting)."""
    for handle in list(_LIVE):
        handle.cancel()


class RemoteGeneration:
    """A GenerationHandle for one HTTP request. Chunks can be read more than once (each
    iteration starts at the first chunk); `failure` holds the EndpointError of a failed
    request, `error` its one line."""

    def __init__(self, endpoint: Endpoint, body: dict[str, Any]) -> None:
        self._endpoint = endpoint
        self._body = body
        self._log = _ChunkLog()
        self._cancelled = threading.Event()
        self._conn_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stats = GenStats()
        self._text: list[str] = []
        self._usage_tokens = 0
        self._expired = threading.Event()
        max_tokens = body.get("max_tokens")
        tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 1024
        self._char_cap = tokens * CHARS_PER_TOKEN_CAP + 4096
        self._byte_cap = tokens * BYTES_PER_TOKEN_CAP + (1 << 20)
        self._chars = 0
        self.failure: EndpointError | None = None
        self.prefilled: tuple[int, int] | None = None  # a server does not report prefill progress
        _LIVE.add(self)
        self._thread = threading.Thread(target=self._run, name="lemlab-remote-gen", daemon=True)
        self._thread.start()

    # -- reader side

    def __iter__(self) -> Iterator[Chunk]:
        index = 0
        while True:
            chunks, closed = self._log.since(index, wait=0.5)
            yield from chunks
            index += len(chunks)
            if closed and not chunks:
                return

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._log.subscribe(loop, event)
        index = 0
        try:
            while True:
                chunks, closed = self._log.since(index)
                for chunk in chunks:
                    yield chunk
                index += len(chunks)
                if closed and not chunks:
                    return
                if not chunks:
                    await event.wait()
                    event.clear()
        finally:
            self._log.unsubscribe(loop, event)

    def cancel(self) -> None:
        """Stop now: closing the socket wakes the reading thread, which ends the stream."""
        self._cancelled.set()
        with self._conn_lock:
            sock = self._sock
        _shutdown(sock)

    def result(self) -> tuple[str, GenStats]:
        for _ in self:  # drain: returns once the final chunk is in
            pass
        return "".join(self._text), self._stats

    def raise_for_error(self) -> tuple[str, GenStats]:
        """result(), but a failed request raises its EndpointError (for dispatcher workers)."""
        text, stats = self.result()
        if self.failure is not None:
            raise self.failure
        return text, stats

    @property
    def error(self) -> str | None:
        """The failed request's one line (redacted), else None."""
        last = self._log.since(0)[0][-1:]
        return last[0].error if last and last[0].done else None

    def take(self, start: int, timeout: float | None = None) -> list[Chunk]:
        """The chunks from index `start` on, waiting up to `timeout` only if there are none yet."""
        return self._log.take(start, timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the reply has finished or `timeout` passed; True if finished."""
        return self._log.wait_closed(timeout)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # -- producer side (runs on the request thread)

    def _run(self) -> None:
        t0 = time.monotonic()
        # The overall deadline: a timer closes the socket, which wakes any blocked read. Every
        # read timeout alone is reset by each keep-alive comment, so it cannot bound a request.
        timer = threading.Timer(self._endpoint.deadline, self._expire)
        timer.daemon = True
        timer.start()
        try:
            self._request(t0)
            if self._expired.is_set():
                raise TimeoutError  # the timer closed the socket: the reply is not complete
        except BaseException as e:  # noqa: BLE001 - a request thread never dies silently
            stopped = self._cancelled.is_set() and not self._expired.is_set()
            if not stopped and not self._log.since(0)[1]:
                self._fail(self._as_endpoint_error(e), t0)
        finally:
            timer.cancel()
            if not self._log.since(0)[1]:  # cancelled, or ended without a final chunk
                reason = "cancelled" if self._cancelled.is_set() else "stop"
                self._finish(reason, t0)

    def _request(self, t0: float) -> None:
        conn, resp = open_request(
            self._endpoint, "POST", "/chat/completions", self._body, on_connect=self._attach
        )
        try:
            if "text/event-stream" in (resp.getheader("Content-Type") or ""):
                self._read_stream(resp, t0)
            else:
                self._read_whole(resp, t0)
        finally:
            conn.close()

    def _as_endpoint_error(self, e: BaseException) -> EndpointError:
        url = self._endpoint.url
        if self._expired.is_set():
            return EndpointUnreachable(
                f"{url}: no complete reply within {self._endpoint.deadline:g} s "
                "(the endpoint's deadline)"
            )
        if isinstance(e, _BadReply):
            return EndpointError(f"{url}: {e}")
        if isinstance(e, EndpointError):
            return e
        if isinstance(e, OSError | http.client.HTTPException):
            return EndpointUnreachable(f"{url}: {_reason(e)} mid-reply")
        if isinstance(e, RecursionError):
            return EndpointError(f"{url}: unreadable reply: JSON nested too deeply")
        if isinstance(e, ValueError):  # not JSON
            return EndpointError(f"{url}: unreadable reply: not JSON ({_one_line(str(e), 80)})")
        # Anything else is a bug of ours meeting a reply we did not foresee: fail this request
        # (not retryable: the same reply would come again) rather than leave readers waiting.
        return EndpointError(f"{url}: unreadable reply ({_one_line(str(e), 80) or 'unexpected'})")

    def _expire(self) -> None:
        self._expired.set()
        self.cancel()

    def _attach(self, conn: http.client.HTTPConnection) -> None:
        with self._conn_lock:
            # The socket itself: http.client drops conn.sock once a response that ends at
            # connection close (HTTP/1.0, SSE) has begun, but its file still reads from this one.
            self._sock = conn.sock
        if self._cancelled.is_set():
            raise EndpointError("cancelled")

    def _read_stream(self, resp: http.client.HTTPResponse, t0: float) -> None:
        finish: str | None = None
        counted = 0
        url = self._endpoint.url
        budget = [self._byte_cap]
        last_data = [time.monotonic()]

        def on_line(raw: bytes) -> None:
            budget[0] -= len(raw)
            if budget[0] < 0:
                raise _Cut()
            now = time.monotonic()
            if raw.startswith(b"data:"):
                last_data[0] = now
            elif now - last_data[0] > self._endpoint.timeout:
                # Keep-alive comments alone for a whole read timeout: the server is not replying.
                raise EndpointUnreachable(
                    f"{url}: no data for {self._endpoint.timeout:g} s (only keep-alive comments)"
                )

        try:
            # Lines are read whole up to the byte budget, so the budget, not a split, ends them.
            for data in iter_sse(resp, on_line, line_cap=min(self._byte_cap + 1, LINE_CAP)):
                if self._cancelled.is_set():
                    return
                if data.strip() == "[DONE]":
                    break
                event = _object(json.loads(data), "event")
                if "error" in event:
                    msg = redact(_error_message(data.encode()), self._endpoint)
                    raise EndpointHTTPError(500, f"{url}: {msg}")
                self._take_usage(event.get("usage"))
                for choice in _choices(event):
                    delta = _object(choice.get("delta") or {}, "delta")
                    text = _text(delta.get("content"))
                    if text:
                        counted += 1
                        if self._emit(text, t0, counted):
                            raise _Cut()
                    finish = _text(choice.get("finish_reason")) or finish
            else:
                if finish is None and not self._cancelled.is_set():
                    raise EndpointUnreachable(f"{url}: stream ended mid-reply")
        except _Cut:
            finish = "length"
        if not self._cancelled.is_set():
            self._finish(finish or "stop", t0, counted)

    def _read_whole(self, resp: http.client.HTTPResponse, t0: float) -> None:
        raw = resp.read(self._byte_cap + 1)
        if len(raw) > self._byte_cap:
            raise EndpointError(
                f"{self._endpoint.url}: reply larger than {self._byte_cap} bytes "
                "for max_tokens (does the server ignore max_tokens?)"
            )
        event = _object(json.loads(raw), "reply")
        self._take_usage(event.get("usage"))
        choices = _choices(event)
        choice = choices[0] if choices else {}
        text = _text(_object(choice.get("message") or {}, "message").get("content"))
        cut = bool(text) and self._emit(text[: self._char_cap], t0, 1)
        finish = "length" if cut else _text(choice.get("finish_reason")) or "stop"
        self._finish(finish, t0, 1 if text else 0)

    def _take_usage(self, usage: Any) -> None:
        # Usage is advisory: a field that is not a count is ignored rather than failing a reply.
        if not isinstance(usage, dict):
            return
        self._stats.prompt_tokens = _count(usage.get("prompt_tokens"))
        self._usage_tokens = _count(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            self._stats.cached_prompt_tokens = _count(details.get("cached_tokens"))

    def _emit(self, text: str, t0: float, counted: int) -> bool:
        """Add text; True once the reply reached its size cap (the rest is not read)."""
        room = self._char_cap - self._chars
        cut = len(text) >= room
        text = text[: max(room, 0)]
        self._chars += len(text)
        now = time.monotonic() - t0
        if not self._text:
            self._stats.time_to_first_token = now
        self._text.append(text)
        self._stats.generation_tokens = counted
        self._stats.elapsed = now
        self._log.append(Chunk(text, replace(self._stats)))
        return cut

    def _finish(self, reason: str, t0: float, counted: int | None = None) -> None:
        stats = self._stats
        stats.elapsed = time.monotonic() - t0
        stats.finish_reason = reason
        stats.generation_tokens = self._usage_tokens or counted or stats.generation_tokens
        decode_time = stats.elapsed - stats.time_to_first_token
        if stats.generation_tokens > 1 and decode_time > 0:
            stats.generation_tps = (stats.generation_tokens - 1) / decode_time
        if stats.prompt_tokens and stats.time_to_first_token > 0:
            stats.prompt_tps = stats.prompt_tokens / stats.time_to_first_token
        self._log.append(Chunk("", replace(stats), done=True))

    def _fail(self, error: EndpointError, t0: float) -> None:
        # Every message built from server text passes here or open_request: no credential in it.
        clean = redact(str(error), self._endpoint)
        if clean != str(error):
            error.args = (clean,)
        self.failure = error
        self._stats.elapsed = time.monotonic() - t0
        self._stats.finish_reason = "error"
        line = _one_line(clean, 300)
        self._log.append(Chunk("", replace(self._stats), done=True, error=line))


class _BadReply(Exception):
    """A reply that is JSON but not the OpenAI chat completions shape."""


class _Cut(Exception):
    """The reply reached its size cap: stop reading, keep what came (finish_reason 'length')."""


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadReply(f"unreadable reply: {what} is not a JSON object")
    return value


def _choices(event: dict[str, Any]) -> list[dict[str, Any]]:
    choices = event.get("choices") or []
    if not isinstance(choices, list):
        raise _BadReply("unreadable reply: choices is not a list")
    return [_object(c, "a choice") for c in choices]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadReply("unreadable reply: content or finish_reason is not a string")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return 0
    return int(min(value, 1 << 40))


# ---------------------------------------------------------------- the engine


class RemoteEngine:
    """lemlab.core.engine_api.Engine over an OpenAI-compatible server.

    `load("openai:http://host:8080/v1#model")` or `load("endpoint:<name>")` checks the server;
    `endpoints` overrides the named endpoints of config.toml (tests, or a caller that already
    read them); `extra_body` adds fields to every request (e.g. top_k, logit_bias)."""

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint] | None = None,
        *,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._extra = dict(extra_body or {})
        self._endpoint: Endpoint | None = None
        self._adapter: str | None = None
        self._info: LoadInfo | None = None
        self._active: weakref.WeakSet[RemoteGeneration] = weakref.WeakSet()

    def __repr__(self) -> str:
        where = self._endpoint.spec if self._endpoint else "not loaded"
        return f"RemoteEngine({where})"

    @property
    def loaded(self) -> LoadInfo | None:
        return self._info

    @property
    def endpoint(self) -> Endpoint | None:
        """The loaded endpoint, with the model name resolved (no credentials inside)."""
        return self._endpoint

    def load(self, model: str, adapter: str | None = None) -> Future[LoadInfo]:
        return _in_thread(lambda: self._load(model, adapter), "lemlab-remote-load")

    def unload(self) -> Future[None]:
        self._info, self._endpoint, self._adapter = None, None, None
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        failed: Future[int] = Future()  # a server does not say before it replies
        failed.set_exception(LemlabError("token counts need a local model"))
        return failed

    def engine_cpu_seconds(self) -> float | None:
        return 0.0  # the server generates in another process: nothing taken from this one

    def shutdown(self) -> None:
        for handle in list(self._active):
            handle.cancel()
        self.unload()

    def ping(self) -> None:
        """Raise EndpointUnreachable / EndpointHTTPError unless the server answers now."""
        if self._endpoint is None:
            raise LemlabError("no remote model loaded")
        list_models(self._endpoint)

    def generate(
        self,
        messages: list[Message],
        sampler: Sampler,
        *,
        reuse_prefix: bool = False,  # servers keep their own prompt caches
    ) -> RemoteGeneration:
        if self._endpoint is None:
            raise LemlabError("no remote model loaded")
        handle = RemoteGeneration(self._endpoint, self._body(messages, sampler))
        self._active.add(handle)
        return handle

    def _body(self, messages: list[Message], sampler: Sampler) -> dict[str, Any]:
        assert self._endpoint is not None
        body: dict[str, Any] = {"messages": list(messages), "stream": self._endpoint.stream}
        body.update(sampler.as_dict())
        if self._endpoint.model:
            body["model"] = self._endpoint.model
        if self._endpoint.stream:
            body["stream_options"] = {"include_usage": True}
        if self._adapter:
            body[ADAPTER_FIELD] = self._adapter
        body.update(self._extra)
        return body

    def _load(self, spec: str, adapter: str | None) -> LoadInfo:
        t0 = time.monotonic()
        endpoint = parse_model_spec(spec, self._endpoints)
        warnings: list[str] = []
        listed = list_models(endpoint)
        endpoint = endpoint.with_model(_choose_model(endpoint, listed, adapter, warnings))
        if adapter:
            _check_adapter(endpoint, adapter, self._extra)
            warnings.append(
                f"adapter sent per request as `{ADAPTER_FIELD}` (mlx_lm.server); "
                "other servers may ignore it"
            )
        self._endpoint, self._adapter = endpoint, adapter
        self._info = LoadInfo(
            model_path=endpoint.spec,
            adapter_path=adapter,
            model_type="remote",
            supports_system_role=True,  # the server applies its own chat template
            load_time=time.monotonic() - t0,
            warnings=warnings,
        )
        return self._info


def _choose_model(
    endpoint: Endpoint, listed: list[str] | None, adapter: str | None, warnings: list[str]
) -> str | None:
    if endpoint.model:
        if listed and endpoint.model not in listed:
            warnings.append(f"model {endpoint.model!r} is not in the server's model list")
        return endpoint.model
    if listed and len(listed) == 1:
        return listed[0]
    if listed:
        shown = ", ".join(listed[:3]) + (", …" if len(listed) > 3 else "")
        raise LemlabError(
            f"{endpoint.url} serves {len(listed)} models ({shown}); "
            f"name one: {endpoint.spec}#<model>"
        )
    if adapter:
        # mlx_lm.server ignores a per-request adapter sent for its default model.
        raise LemlabError(f"{endpoint.url} lists no models; name the model: {endpoint.spec}#<model>")
    warnings.append("the server did not list its models; using its default model")
    return None


def _check_adapter(endpoint: Endpoint, adapter: str, extra: Mapping[str, Any]) -> None:
    """One 1-token request with the adapter, so a path the server cannot load fails at load."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "stream": False,
        ADAPTER_FIELD: adapter,
        **({"model": endpoint.model} if endpoint.model else {}),
        **extra,
    }
    with _Deadline(endpoint.deadline) as deadline:
        try:
            conn, resp = open_request(
                endpoint, "POST", "/chat/completions", body, on_connect=deadline.attach
            )
            conn.close()
        except EndpointHTTPError as e:
            raise LemlabError(f"the server cannot use adapter {adapter}: {e}") from None
        except EndpointUnreachable:
            if deadline.expired.is_set():
                raise deadline.error(endpoint) from None
            raise


def _in_thread(work: Callable[[], LoadInfo], name: str) -> Future[LoadInfo]:
    future: Future[LoadInfo] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as e:  # delivered to the caller through the future
            future.set_exception(e)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


# ---------------------------------------------------------------- dispatcher glue


def complete(engine: RemoteEngine, messages: list[Message], sampler: Sampler) -> tuple[str, GenStats]:
    """One whole reply; a failed request raises its EndpointError (retryable or not)."""
    return engine.generate(messages, sampler).raise_for_error()


def remote_worker(
    engine: RemoteEngine,
    do: Callable[[RemoteEngine, U], R],
    *,
    max_in_flight: int | None = None,
) -> Worker[U, R]:
    """A dispatcher Worker for a loaded RemoteEngine: `do(engine, unit)` runs each unit, the
    server's model list is the health probe, the capacity defaults to the endpoint's."""
    endpoint = engine.endpoint
    if endpoint is None:
        raise LemlabError("load the remote model before making a worker of it")
    return Worker(
        name=endpoint.label,
        do=lambda unit: do(engine, unit),
        max_in_flight=max_in_flight or endpoint.max_in_flight,
        probe=engine.ping,
    )


def _shutdown(sock: socket.socket | None) -> None:
    """Close a request's socket from another thread: the blocked read wakes and ends."""
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
