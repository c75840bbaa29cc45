"""Remote model endpoints (OpenAI-compatible servers: mlx_lm.server, vLLM, Ollama).

Headless: parsing of model specs such as `openai:http://host:8080/v1#model-name`, named
endpoints from the `[endpoints.<name>]` tables of config.toml, and the API key, which is read
from an environment variable named by `api_key_env` at the moment a request is made and is
never stored on an object, in a file, or in a message.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from lemlab.core.errors import LemlabError

OPENAI_PREFIX = "openai:"
NAMED_PREFIX = "endpoint:"
KEYRING_SERVICE = "lemlab"
_USERINFO = re.compile(r"//[^/?#\s]*@")

# Config keys of one `[endpoints.<name>]` table, with what each one means.
ENDPOINT_KEYS: dict[str, str] = {
    "url": "base URL of the OpenAI-compatible API, e.g. http://studio.local:8080/v1",
    "model": "model name sent with each request (default: the one the server lists)",
    "api_key_env": "name of the environment variable holding the API key",
    "max_in_flight": "requests sent to this endpoint at the same time (default 1)",
    "stream": "stream replies (default true); false for servers that cannot",
    "timeout": "seconds to wait for the next piece of a reply (default 600)",
    "deadline": "seconds one whole request may take, however the server trickles (default 1800)",
}


class EndpointError(LemlabError):
    """A remote endpoint failed. `retryable` tells a dispatcher whether trying again may help."""

    retryable = False


class EndpointUnreachable(EndpointError):
    """Connection refused, reset or lost mid-reply, or a timeout: the server may come back."""

    retryable = True


class EndpointHTTPError(EndpointError):
    """The server answered with an HTTP error. 5xx and 429 are worth retrying, 4xx are not."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = status >= 500 or status == 429


@dataclass(frozen=True)
class Endpoint:
    """Where to send requests. `url` never holds credentials; the key is looked up per request."""

    url: str
    model: str | None = None
    name: str | None = None
    api_key_env: str | None = None
    max_in_flight: int = 1
    stream: bool = True
    timeout: float = 600.0
    deadline: float = 1800.0  # a whole request, so keep-alive comments cannot stretch it forever
    # user:password from the URL, kept only in memory and out of repr (HTTP basic auth).
    userinfo: str | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """A short name for lists and logs: the configured name, else host:port."""
        return self.name or (urlsplit(self.url).netloc or self.url)

    @property
    def spec(self) -> str:
        """A spec that re-creates this endpoint, safe to store (no credentials)."""
        if self.name:
            base = NAMED_PREFIX + self.name
        else:
            base = OPENAI_PREFIX + self.url
        return f"{base}#{self.model}" if self.model else base

    def with_model(self, model: str | None) -> Endpoint:
        return replace(self, model=model)


def is_remote_spec(spec: str) -> bool:
    """True for model specs that name a server rather than a local folder or hub id."""
    return spec.startswith((OPENAI_PREFIX, NAMED_PREFIX))


def redact_url(url: str) -> str:
    """The URL with any user:password@ removed, for display and storage."""
    return _USERINFO.sub("//", url)


def parse_model_spec(spec: str, endpoints: Mapping[str, Endpoint] | None = None) -> Endpoint:
    """`openai:<url>[#model]` or `endpoint:<name>[#model]` -> Endpoint.

    `endpoints` defaults to the named endpoints of the user's config file."""
    spec = spec.strip()
    if spec.startswith(NAMED_PREFIX):
        name, _, model = spec[len(NAMED_PREFIX) :].partition("#")
        table = load_endpoints() if endpoints is None else endpoints
        found = _named(name.strip(), table)
        return found.with_model(model.strip()) if model.strip() else found
    if not spec.startswith(OPENAI_PREFIX):
        raise LemlabError(
            f"not a remote model spec: {_clip(redact_url(spec))} (use openai:<url>#<model>)"
        )
    url, _, model = spec[len(OPENAI_PREFIX) :].partition("#")
    base, userinfo = _parse_url(url.strip())
    return Endpoint(url=base, model=model.strip() or None, userinfo=userinfo)


def _named(name: str, endpoints: Mapping[str, Endpoint]) -> Endpoint:
    if name in endpoints:
        return endpoints[name]
    hint = difflib.get_close_matches(name, list(endpoints), n=1)
    known = f" (did you mean {hint[0]}?)" if hint else ""
    if not endpoints:
        known = " (no [endpoints.<name>] tables in config.toml)"
    raise LemlabError(f"unknown endpoint {name!r}{known}")


def _parse_url(url: str) -> tuple[str, str | None]:
    """Validate a base URL; returns it without credentials (path defaulting to /v1, a query
    string such as ?api-version= kept: it goes out with every request) and userinfo."""
    try:
        parts: SplitResult = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise LemlabError(f"bad endpoint URL {redact_url(url)!r}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LemlabError(
            f"bad endpoint URL {redact_url(url)!r}: expected http(s)://host[:port][/v1]"
        )
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else None
    path = parts.path.rstrip("/") or "/v1"
    clean = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], path, parts.query, ""))
    return clean, userinfo or None


def endpoints_from_config(table: Mapping[str, Any]) -> dict[str, Endpoint]:
    """The `[endpoints]` table of config.toml -> {name: Endpoint}. Unknown keys are errors."""
    out: dict[str, Endpoint] = {}
    for name, entry in table.items():
        if not isinstance(entry, Mapping):
            raise LemlabError(f"config: [endpoints.{name}] must be a table")
        out[name] = _endpoint_from_entry(name, entry)
    return out


def _endpoint_from_entry(name: str, entry: Mapping[str, Any]) -> Endpoint:
    for key in entry:
        if key == "api_key":
            raise LemlabError(
                f"config: [endpoints.{name}] api_key: keys are never stored in files; "
                "put it in an environment variable and name it with api_key_env"
            )
        if key not in ENDPOINT_KEYS:
            hint = difflib.get_close_matches(key, list(ENDPOINT_KEYS), n=1)
            extra = f" (did you mean {hint[0]}?)" if hint else ""
            raise LemlabError(f"config: unknown key {key!r} in [endpoints.{name}]{extra}")
    url = entry.get("url")
    if not isinstance(url, str):
        raise LemlabError(f'config: [endpoints.{name}] needs url = "http://host:port/v1"')
    base, userinfo = _parse_url(url)
    return Endpoint(
        url=base,
        model=_opt_str(entry, "model", name),
        name=name,
        api_key_env=_opt_str(entry, "api_key_env", name),
        max_in_flight=_int_at_least(entry, "max_in_flight", name, 1, 1),
        stream=_bool(entry, "stream", name, True),
        timeout=float(_int_at_least(entry, "timeout", name, 600, 1)),
        deadline=float(_int_at_least(entry, "deadline", name, 1800, 1)),
        userinfo=userinfo,
    )


def _opt_str(entry: Mapping[str, Any], key: str, name: str) -> str | None:
    value = entry.get(key)
    if value is not None and not (isinstance(value, str) and value):
        raise LemlabError(f"config: [endpoints.{name}] {key} must be a non-empty string")
    return value


def _int_at_least(entry: Mapping[str, Any], key: str, name: str, default: int, low: int) -> int:
    value = entry.get(key, default)
    # `not low <= value <= cap` is also true for NaN, which compares false with everything.
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= 1e9:
        raise LemlabError(f"config: [endpoints.{name}] {key} must be a number from {low} to 1e9")
    return int(value)


def _bool(entry: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise LemlabError(f"config: [endpoints.{name}] {key} must be true or false")
    return value


def load_endpoints(config_file: Path | None = None) -> dict[str, Endpoint]:
    """Named endpoints from config.toml (LEMLAB_HOME-aware); {} when the file has none."""
    if config_file is None:
        from lemlab.core.paths import get_paths

        config_file = get_paths().config_file
    if not config_file.exists():
        return {}
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise LemlabError(f"{config_file}: not UTF-8 text (bad byte at offset {e.start})") from None
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise LemlabError(f"{config_file}: not valid TOML ({e or 'nested too deeply'})") from None
    table = data.get("endpoints", {})
    if not isinstance(table, Mapping):
        raise LemlabError(f"{config_file}: endpoints must be a table of [endpoints.<name>]")
    return endpoints_from_config(table)


def api_key(endpoint: Endpoint) -> str | None:
    """The endpoint's API key, read now: the `api_key_env` variable, else the OS keyring (only if
    the optional `keyring` package is installed). Never cached, so it is never stored anywhere."""
    if not endpoint.api_key_env:
        return None
    value = os.environ.get(endpoint.api_key_env)
    if value:
        return value
    value = _keyring_lookup(endpoint.name or endpoint.api_key_env)
    if value:
        return value
    raise EndpointError(
        f"endpoint {endpoint.label}: environment variable {endpoint.api_key_env} is not set "
        "(it should hold the API key)"
    )


def _keyring_lookup(user: str) -> str | None:
    try:
        import keyring  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, user)  # type: ignore[no-any-return]
    except Exception:  # a broken keyring backend must not stop a run that has no key there
        return None


def _clip(text: str, n: int = 80) -> str:
    line = text.replace("\n", " ")
    return line if len(line) <= n else line[: n - 1] + "…"
