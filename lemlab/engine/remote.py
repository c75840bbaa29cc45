"""An Engine that talks to an OpenAI-compatible chat completions server (mlx_lm.server, vLLM,
Ollama) over HTTP.

No mlx: each request runs on a short-lived thread of its own, which is safe here because no MLX
stream is involved. HTTP goes through httpx: one Client per server origin (keep-alive, and
trust_env, so HTTP(S)_PROXY, NO_PROXY and SSL_CERT_FILE apply as they do for other tools). The
API key is read from the environment per request (lemlab.core.remote.endpoints.api_key) and only
ever placed in the Authorization header.

Stopping a request at any moment (Ctrl+C, the overall deadline) from another thread is not part
of httpx's API, and its timeouts are per read, never for a whole request: a _Stopper shuts the
request's socket down, which wakes a blocked read at once. The socket is found through httpx's
documented `trace` request extension (each new connection's network stream) and claimed by the
thread that reads or writes it, so a pooled connection reused by another request is that
request's to stop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

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
    # Uncompressed, as http.client asked before: the byte caps then bound what is held in memory
    # (a gzip body is inflated chunk by chunk, a thousandfold at worst).
    headers["Accept-Encoding"] = "identity"
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
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.RemoteProtocolError):  # h11's words; a bad status line is server text
        text = str(exc)
        if text.startswith("Server disconnected"):
            return "connection closed by the server"
        if text.startswith("peer closed connection"):
            return "reply cut short"
        return f"not an HTTP reply ({_one_line(text, 80)})" if text else "not an HTTP reply"
    cause = _root_cause(exc)
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(cause, ConnectionResetError | BrokenPipeError):
        return "connection closed by the server"
    text = str(cause).splitlines()[0] if str(cause) else ""
    return text or "connection failed"


def _root_cause(exc: BaseException) -> BaseException:
    """The OSError under httpx's and httpcore's wrappers (each raised while handling the one
    below), else `exc` itself."""
    seen: set[int] = set()
    below: BaseException | None = exc
    while below is not None and id(below) not in seen:
        if isinstance(below, OSError):
            return below
        seen.add(id(below))
        below = below.__cause__ or below.__context__
    return exc


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


_CLIENTS: dict[str, httpx.Client] = {}
_CLIENTS_LOCK = threading.Lock()
_CURRENT = threading.local()  # .stopper: the _Stopper of the request this thread is running


def _client(endpoint: Endpoint) -> httpx.Client:
    """The one Client (connection pool) of the endpoint's origin; it holds no credentials."""
    parts = urlsplit(endpoint.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(origin)
        if client is None:
            client = httpx.Client(trust_env=True, follow_redirects=False)
            _CLIENTS[origin] = client
        return client


def _url(endpoint: Endpoint, path: str) -> str:
    """`path` under the endpoint's base URL, its query string (e.g. ?api-version=) kept."""
    parts = urlsplit(endpoint.url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path, fragment=""))


class _Stopper:
    """Stops one request from another thread by shutting its socket down: a blocked read wakes
    and ends. The socket is claimed by the request's own thread whenever it reads or writes
    (see _watch); once released, stop() leaves the socket alone (back in the pool, maybe
    serving another request)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._released = False
        self.stopped = False

    def claim(self, sock: socket.socket) -> None:
        with self._lock:
            if self._released or sock is self._sock:
                return
            self._sock = sock
            stopped = self.stopped
        if stopped:  # stopped before the socket was known: stop it now
            _shutdown(sock)

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            sock = None if self._released else self._sock
        _shutdown(sock)

    def release(self) -> None:
        with self._lock:
            self._released = True
            self._sock = None


def _claim(sock: socket.socket) -> None:
    stopper = getattr(_CURRENT, "stopper", None)
    if stopper is not None:
        stopper.claim(sock)


def _watch(stream: Any) -> None:
    """Make every read and write on a new connection's network stream claim its socket for
    the request of the calling thread first (the connection may be pooled and reused)."""
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return
    read, write = stream.read, stream.write

    def watched_read(max_bytes: int, timeout: float | None = None) -> bytes:
        _claim(sock)
        return read(max_bytes, timeout)

    def watched_write(buffer: bytes, timeout: float | None = None) -> None:
        _claim(sock)
        write(buffer, timeout)

    stream.read, stream.write = watched_read, watched_write
    _claim(sock)


def _trace(event: str, info: Mapping[str, Any]) -> None:
    """httpx's `trace` extension: sees each new connection's stream (TCP, then TLS)."""
    if event.endswith((".connect_tcp.complete", ".start_tls.complete")):
        stream = info.get("return_value")
        if stream is not None:
            _watch(stream)


@contextmanager
def open_request(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    read_timeout: float | None = None,
    stopper: _Stopper | None = None,
) -> Iterator[httpx.Response]:
    """Send one request; yields a 2xx response (headers read, body not), closed on exit.
    `stopper` can stop the request from another thread until then.

    Raises EndpointUnreachable (retryable) or EndpointHTTPError (retryable when 5xx/429)."""
    data = json.dumps(body).encode() if body is not None else None
    client = _client(endpoint)
    request = client.build_request(
        method,
        _url(endpoint, path),
        content=data,
        headers=_headers(endpoint, data is not None),
        timeout=httpx.Timeout(read_timeout or endpoint.timeout, connect=CONNECT_TIMEOUT),
        extensions={"trace": _trace},
    )
    previous = getattr(_CURRENT, "stopper", None)
    _CURRENT.stopper = stopper
    try:
        try:
            resp = client.send(request, stream=True)
        except (OSError, httpx.HTTPError) as e:  # a bad status line is server text: redacted
            raise EndpointUnreachable(f"{endpoint.url}: {redact(_reason(e), endpoint)}") from None
        try:
            if resp.status_code >= 400:
                try:
                    msg = _error_message(read_upto(resp, 8192))
                except (OSError, httpx.HTTPError):
                    msg = resp.reason_phrase
                msg = redact(msg, endpoint)
                status = resp.status_code
                raise EndpointHTTPError(status, f"{endpoint.url}: HTTP {status}: {msg}")
            yield resp
        finally:
            if stopper is not None:
                stopper.release()  # before the connection may go back to the pool
            resp.close()
    finally:
        _CURRENT.stopper = previous


def read_upto(resp: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body (the rest is not read; closing drops the connection)."""
    out = bytearray()
    for chunk in resp.iter_bytes():
        out += chunk
        if len(out) >= limit:
            break
    return bytes(out[:limit])


class _Deadline:
    """Shuts the request's socket down after `seconds`, waking any blocked read: a server that
    trickles bytes resets every read timeout, so only a deadline bounds a whole request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stopper = _Stopper()
        self._timer = threading.Timer(seconds, self.stopper.stop)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    @property
    def expired(self) -> bool:
        return self.stopper.stopped

    def error(self, endpoint: Endpoint) -> EndpointUnreachable:
        return EndpointUnreachable(f"{endpoint.url}: no complete answer within {self.seconds:g} s")


def list_models(endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT) -> list[str] | None:
    """GET /models: the model ids the server lists, or None when it answers without a list
    (mlx_lm.server sends an empty 200 body when no Hugging Face cache folder exists)."""
    with _Deadline(min(endpoint.deadline, 6 * timeout)) as deadline:
        try:
            with open_request(
                endpoint, "GET", "/models", read_timeout=timeout, stopper=deadline.stopper
            ) as resp:
                raw = read_upto(resp, LIST_CAP)
            if deadline.expired:  # the socket was shut: what came is a fragment
                raise TimeoutError
        except (OSError, httpx.HTTPError, EndpointUnreachable) as e:
            if deadline.expired:
                raise deadline.error(endpoint) from None
            if isinstance(e, EndpointUnreachable):
                raise
            raise EndpointUnreachable(f"{endpoint.url}: {redact(_reason(e), endpoint)}") from None
    try:
        data = json.loads(raw)
        return [str(m["id"]) for m in data["data"]]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def iter_lines(chunks: Iterable[bytes], cap: int) -> Iterator[bytes]:
    """The lines of a byte stream, each with its newline; a line longer than `cap` bytes comes in
    pieces of `cap` (as readline(cap) gives them), so no more than `cap` plus one chunk is held."""
    buf = bytearray()
    scanned = 0  # buf[:scanned] holds no newline
    for chunk in chunks:
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", max(start, scanned), start + cap)
            if nl >= 0:
                yield bytes(buf[start : nl + 1])
                start = scanned = nl + 1
            elif len(buf) - start >= cap:
                yield bytes(buf[start : start + cap])
                start = scanned = start + cap
            else:
                scanned = len(buf)
                break
        del buf[:start]
        scanned -= start
    if buf:
        yield bytes(buf)


def iter_sse(
    resp: httpx.Response,
    on_line: Callable[[bytes], None] | None = None,
    line_cap: int = LINE_CAP,
) -> Iterator[str]:
    """The `data:` payloads of a server-sent-events stream, one per event; comments skipped.
    `on_line` sees every raw line (comments too), so a caller can bound what a stream costs."""
    lines: list[str] = []
    for raw in iter_lines(resp.iter_bytes(), line_cap):
        if on_line is not None:
            on_line(raw)
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
        self._stopper = _Stopper()
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
        """Stop now: shutting the socket down wakes the reading thread, which ends the stream."""
        self._cancelled.set()
        self._stopper.stop()

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
        if self._cancelled.is_set():
            return
        with open_request(
            self._endpoint, "POST", "/chat/completions", self._body, stopper=self._stopper
        ) as resp:
            if "text/event-stream" in resp.headers.get("Content-Type", ""):
                self._read_stream(resp, t0)
            else:
                self._read_whole(resp, t0)

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
        if isinstance(e, OSError | httpx.HTTPError):
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

    def _read_stream(self, resp: httpx.Response, t0: float) -> None:
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

    def _read_whole(self, resp: httpx.Response, t0: float) -> None:
        raw = read_upto(resp, self._byte_cap + 1)
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
        raise LemlabError(
            f"{endpoint.url} lists no models; name the model: {endpoint.spec}#<model>"
        )
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
            with open_request(
                endpoint, "POST", "/chat/completions", body, stopper=deadline.stopper
            ):
                pass
        except EndpointHTTPError as e:
            raise LemlabError(f"the server cannot use adapter {adapter}: {e}") from None
        except EndpointUnreachable:
            if deadline.expired:
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


def complete(
    engine: RemoteEngine, messages: list[Message], sampler: Sampler
) -> tuple[str, GenStats]:
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
