"""Model specs, named endpoints from config.toml, and the API key rule (env only, never stored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lemlab.core.errors import LemlabError
from lemlab.core.paths import get_paths
from lemlab.core.remote.endpoints import (
    Endpoint,
    EndpointError,
    api_key,
    endpoints_from_config,
    is_remote_spec,
    load_endpoints,
    parse_model_spec,
    redact_url,
)


@pytest.mark.parametrize(
    ("spec", "url", "model"),
    [
        ("openai:http://host:8080/v1#model-name", "http://host:8080/v1", "model-name"),
        ("openai:http://host:8080/v1", "http://host:8080/v1", None),
        ("openai:http://host:8080", "http://host:8080/v1", None),  # /v1 by default
        ("openai:http://host:8080/v1/#m", "http://host:8080/v1", "m"),
        (
            "openai:https://api.example.org/v1#org/model:tag",
            "https://api.example.org/v1",
            "org/model:tag",
        ),
        (
            "openai:http://127.0.0.1:11434/v1#llama3:latest",
            "http://127.0.0.1:11434/v1",
            "llama3:latest",
        ),
        ("  openai:http://h/v1#m  ", "http://h/v1", "m"),
        (
            "openai:https://h/openai?api-version=2024-06-01#m",
            "https://h/openai?api-version=2024-06-01",
            "m",
        ),
    ],
)
def test_openai_specs(spec: str, url: str, model: str | None) -> None:
    ep = parse_model_spec(spec, {})
    assert (ep.url, ep.model, ep.name) == (url, model, None)
    assert is_remote_spec(spec.strip())
    assert parse_model_spec(ep.spec, {}) == ep  # the stored spec round-trips


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("openai:", "bad endpoint URL"),
        ("openai:host:8080/v1", "expected http(s)://"),
        ("openai:ftp://host/v1", "expected http(s)://"),
        ("openai:http://host:99999/v1", "bad endpoint URL"),
        ("/models/gemma", "not a remote model spec"),
        ("endpoint:nope", "unknown endpoint 'nope'"),
    ],
)
def test_bad_specs_give_one_line(spec: str, needle: str) -> None:
    with pytest.raises(LemlabError) as info:
        parse_model_spec(spec, {})
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_userinfo_is_stripped_everywhere() -> None:
    ep = parse_model_spec("openai:http://alice:s3cret@host:8080/v1#m", {})
    assert ep.url == "http://host:8080/v1" and ep.userinfo == "alice:s3cret"
    for text in (ep.url, ep.spec, ep.label, repr(ep), str(ep)):
        assert "s3cret" not in text and "alice" not in text
    assert redact_url("openai:http://a:b@h:1/v1") == "openai:http://h:1/v1"
    with pytest.raises(LemlabError) as info:
        parse_model_spec("openai:ftp://a:topsecret@h/v1", {})
    assert "topsecret" not in str(info.value)


def test_named_endpoints_from_config_file() -> None:
    cfg = get_paths().config_file
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(
        '[endpoints.studio]\nurl = "http://studio.local:8080/v1"\nmodel = "big"\n'
        'api_key_env = "STUDIO_KEY"\nmax_in_flight = 3\n\n'
        '[endpoints.box]\nurl = "http://box:11434"\nstream = false\ntimeout = 30\n'
    )
    eps = load_endpoints()
    assert set(eps) == {"studio", "box"}
    s = parse_model_spec("endpoint:studio")
    assert (s.url, s.model, s.api_key_env, s.max_in_flight, s.stream) == (
        "http://studio.local:8080/v1",
        "big",
        "STUDIO_KEY",
        3,
        True,
    )
    assert s.spec == "endpoint:studio#big" and s.label == "studio"
    assert parse_model_spec("endpoint:studio#small").model == "small"
    b = parse_model_spec("endpoint:box")
    assert (b.url, b.stream, b.timeout, b.model) == ("http://box:11434/v1", False, 30.0, None)
    with pytest.raises(LemlabError, match="did you mean studio"):
        parse_model_spec("endpoint:studo")


def test_no_config_file_means_no_endpoints() -> None:
    assert load_endpoints() == {}
    with pytest.raises(LemlabError, match="no \\[endpoints"):
        parse_model_spec("endpoint:studio")


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"url": "http://h/v1", "modle": "x"}, "did you mean model"),
        ({"url": "http://h/v1", "api_key": "sk-abc"}, "never stored"),
        ({"model": "x"}, "needs url"),
        ({"url": "http://h/v1", "max_in_flight": 0}, "max_in_flight must be"),
        ({"url": "http://h/v1", "stream": "yes"}, "true or false"),
        ({"url": "http://h/v1", "model": ""}, "non-empty string"),
    ],
)
def test_bad_config_entries(entry: dict, needle: str) -> None:
    with pytest.raises(LemlabError) as info:
        endpoints_from_config({"e": entry})
    assert needle in str(info.value) and "sk-abc" not in str(info.value)


def test_broken_toml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[endpoints.x\nurl=")
    with pytest.raises(LemlabError) as info:
        load_endpoints(bad)
    assert str(bad) in str(info.value)


def test_api_key_from_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = Endpoint(url="http://h/v1", name="e", api_key_env="LEMLAB_TEST_KEY")
    monkeypatch.setenv("LEMLAB_TEST_KEY", "sk-test-123")
    assert api_key(ep) == "sk-test-123"
    assert "sk-test-123" not in repr(ep)
    monkeypatch.delenv("LEMLAB_TEST_KEY")
    with pytest.raises(EndpointError) as info:
        api_key(ep)
    assert "LEMLAB_TEST_KEY is not set" in str(info.value) and not info.value.retryable
    assert api_key(Endpoint(url="http://h/v1")) is None  # no key configured: none sent
