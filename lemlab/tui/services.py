"""The TUI's doors to the config file and the scorers. A broken config file or a scorer that
fails on a reply degrades to a plain default, so the shell always starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lemlab.core import config as cfg_mod
from lemlab.core.config import Config
from lemlab.core.engine_api import Sampler
from lemlab.core.paths import get_paths
from lemlab.core.remote.endpoints import Endpoint, endpoints_from_config
from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import detect


@dataclass
class Settings:
    """What the TUI reads from the config file (core/config.py), with safe defaults."""

    theme: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    model_dirs: list[Path] = field(default_factory=list)  # model_dirs + adapter_dirs
    scan_hf_cache: bool = True
    sampler: Sampler = field(default_factory=Sampler)
    sessions_dir: Path = field(default_factory=lambda: get_paths().sessions_dir)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    error: str = ""  # one line when the config file could not be used


def load_settings() -> Settings:
    s = Settings()
    try:
        cfg = cfg_mod.load_config()
    except Exception as exc:  # noqa: BLE001 - a bad config must not stop the TUI; show the line
        s.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return s
    s.theme = cfg.theme or None
    s.keymap = dict(cfg.keymap)
    s.model_dirs = [*cfg.paths_of("model_dirs"), *cfg.paths_of("adapter_dirs")]
    s.scan_hf_cache = bool(cfg.scan_hf_cache)
    s.sessions_dir = cfg.resolved_sessions_dir
    s.sampler = _sampler_from(cfg, s.sampler)
    s.endpoints = _endpoints_from(cfg)
    return s


def _endpoints_from(cfg: Config) -> dict[str, Endpoint]:
    try:
        return dict(endpoints_from_config(cfg.endpoints))
    except Exception:  # noqa: BLE001 - load_config already checked them; never stop the TUI
        return {}


def _sampler_from(cfg: Config, default: Sampler) -> Sampler:
    try:
        return Sampler(cfg.temperature, cfg.top_p, cfg.max_tokens, cfg.seed)
    except (TypeError, ValueError):
        return default


def score_reply(text: str, prompt: str) -> tuple[float | None, list[str]]:
    """Default scorer's lek_score and failure-mode labels; (None, []) where one fails on the text."""
    score: float | None = None
    labels: list[str] = []
    try:
        score = float(get_scorer("v2").score(text)["lek_score"])
    except Exception:  # noqa: BLE001 - scoring is an extra: a scorer's bug never breaks chat
        score = None
    try:
        labels = [mode.label for mode in detect(text, prompt)]
    except Exception:  # noqa: BLE001
        labels = []
    return score, labels
