"""config.toml: typed settings, one-line errors, atomic saves, no API keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lemlab.core.config import (
    FIELDS,
    Config,
    config_from_dict,
    default_config,
    describe_settings,
    load_config,
    save_config,
)
from lemlab.core.errors import DataError
from lemlab.core.paths import get_paths


def _write(text: str) -> Path:
    p = get_paths().config_file
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_missing_file_gives_defaults() -> None:
    cfg = load_config()
    assert cfg == default_config()
    assert (cfg.default_scorer, cfg.max_tokens, cfg.temperature, cfg.top_p) == (
        "v2",
        1024,
        0.0,
        1.0,
    )
    assert cfg.resolved_sessions_dir == get_paths().sessions_dir
    assert cfg.resolved_kernels_dir == get_paths().kernels_dir


def test_every_setting_is_documented() -> None:
    docs = dict(describe_settings())
    assert set(docs) == set(FIELDS) and all(len(d) > 20 for d in docs.values())


def test_full_file_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELS_ROOT", str(tmp_path))
    _write(
        """
model_dirs = ["$MODELS_ROOT/mlx", "~/models"]
adapter_dirs = "~/adapters"
sessions_dir = "~/lab/sessions"
theme = "gruvbox"
max_tokens = 4096
temperature = 0.8
top_p = 0.95
seed = 42
default_scorer = "V2-Distill"

[keymap]
quit = "ctrl+q, f10"
run_battery = ["ctrl+r", "f5"]

[endpoints.studio]
url = "http://studio.local:8080/v1"
model = "gemma-3-12b"
api_key_env = "STUDIO_KEY"
"""
    )
    cfg = load_config()
    assert cfg.paths_of("model_dirs") == [tmp_path / "mlx", Path.home() / "models"]
    assert cfg.adapter_dirs == ["~/adapters"]
    assert cfg.resolved_sessions_dir == Path.home() / "lab" / "sessions"
    assert (cfg.max_tokens, cfg.temperature, cfg.top_p, cfg.seed) == (4096, 0.8, 0.95, 42)
    assert cfg.default_scorer == "v2-distill"
    assert cfg.keymap == {"quit": "ctrl+q,f10", "run_battery": "ctrl+r,f5"}
    assert cfg.endpoints["studio"]["api_key_env"] == "STUDIO_KEY"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("modle_dirs = []", "unknown setting 'modle_dirs' (did you mean 'model_dirs'?)"),
        ("temprature = 0.5", "unknown setting 'temprature' (did you mean 'temperature'?)"),
        ("zzz = 1", "unknown setting 'zzz'"),
        ("max_tokens = 0", "max_tokens must be a whole number between 1 and 1000000000 (got 0)"),
        (
            "max_tokens = 1.5",
            "max_tokens must be a whole number between 1 and 1000000000 (got 1.5)",
        ),
        ("temperature = nan", "temperature must be a number between 0.0 and 5.0 (got nan)"),
        ("top_p = -inf", "top_p must be a number between 0.0 and 1.0 (got -inf)"),
        ("seed = -1", "seed must be a whole number between 0 and 4294967295 (got -1)"),
        ("top_p = 2", "top_p must be a number between 0.0 and 1.0 (got 2)"),
        ("temperature = true", "temperature must be a number between 0.0 and 5.0 (got True)"),
        ("model_dirs = [1]", "model_dirs must be a list of folder paths"),
        ("default_scorer = 'v9'", "default_scorer must be one of v2, v2-distill, v0 (got 'v9')"),
        ("scan_hf_cache = 'yes'", "scan_hf_cache must be true or false"),
        ("[keymap]\nquit = 3", "keymap.quit must be keys such as"),
    ],
)
def test_bad_values_give_one_line_with_file(text: str, expected: str) -> None:
    p = _write(text + "\n")
    with pytest.raises(DataError) as exc:
        load_config()
    msg = str(exc.value)
    assert msg.startswith(f"{p}: ") and expected in msg and "\n" not in msg


def test_malformed_toml_names_file_and_line() -> None:
    p = _write('theme = "dark"\nmax_tokens = = 3\n')
    with pytest.raises(DataError) as exc:
        load_config()
    assert str(exc.value).startswith(f"{p}:2: malformed TOML (")
    p = _write('theme = "dark"\nmodel_dirs = [\n')  # error at the end of the document
    with pytest.raises(DataError, match=r":3: malformed TOML"):
        load_config()


def test_api_key_in_endpoint_rejected() -> None:
    p = _write('[endpoints.box]\nurl = "http://box:8080/v1"\napi_key = "sk-secret"\n')
    with pytest.raises(DataError) as exc:
        load_config()
    msg = str(exc.value)
    assert msg.startswith(f"{p}: [endpoints.box] api_key") and "api_key_env" in msg
    assert "sk-secret" not in msg


def test_endpoint_unknown_key_hint() -> None:
    _write('[endpoints.box]\nurl = "http://box:8080/v1"\napi_key_evn = "K"\n')
    with pytest.raises(DataError, match=r"did you mean api_key_env\?"):
        load_config()


def test_save_round_trip_is_atomic_and_minimal() -> None:
    cfg = dataclasses.replace(
        default_config(),
        theme="nord",
        model_dirs=["~/m"],
        keymap={"quit": "ctrl+q"},
        endpoints={"local": {"url": "http://127.0.0.1:8080/v1", "api_key_env": "LOCAL_KEY"}},
    )
    path = save_config(cfg)
    assert path == get_paths().config_file
    assert load_config() == cfg
    text = path.read_text()
    assert "max_tokens" not in text  # defaults are left out, so they follow future defaults
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp files left


def test_save_refuses_what_load_would_refuse(tmp_path: Path) -> None:
    bad = dataclasses.replace(
        default_config(), endpoints={"x": {"url": "http://x/v1", "api_key": "k"}}
    )
    with pytest.raises(DataError):
        save_config(bad, tmp_path / "c.toml")
    assert not (tmp_path / "c.toml").exists()


def test_theme_update_the_way_themes_module_does_it() -> None:
    _write("max_tokens = 2048\n")
    current = load_config()
    assert isinstance(current, Config) and dataclasses.is_dataclass(current)
    save_config(dataclasses.replace(current, theme="gruvbox"))
    again = load_config()
    assert (again.theme, again.max_tokens) == ("gruvbox", 2048)


def test_config_from_dict_prefix() -> None:
    with pytest.raises(DataError, match=r"^here: unknown setting"):
        config_from_dict({"nope": 1}, source="here")
