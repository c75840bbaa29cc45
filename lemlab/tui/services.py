"""The TUI's doors to parts written elsewhere (config, discovery, scoring). Each degrades to a
plain default while that part is missing or broken, so the shell always starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.engine_api import Sampler
from lemlab.core.paths import get_paths


@dataclass
class Settings:
    """What the TUI reads from the config file (core/config.py), with safe defaults."""

    theme: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    model_dirs: list[Path] = field(default_factory=list)  # model_dirs + adapter_dirs
    scan_hf_cache: bool = True
    sampler: Sampler = field(default_factory=Sampler)
    sessions_dir: Path = field(default_factory=lambda: get_paths().sessions_dir)
    endpoints: dict[str, Any] = field(default_factory=dict)  # name -> core.endpoints.Endpoint
    error: str = ""  # one line when the config file could not be used


def load_settings() -> Settings:
    s = Settings()
    try:
        from lemlab.core import config as cfg_mod
    except ImportError:
        return s
    try:
        cfg = cfg_mod.load_config()
    except Exception as exc:  # noqa: BLE001 - a bad config must not stop the TUI; show the line
        s.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return s
    s.theme = getattr(cfg, "theme", None) or None
    s.keymap = dict(getattr(cfg, "keymap", {}) or {})
    s.model_dirs = [*cfg.paths_of("model_dirs"), *cfg.paths_of("adapter_dirs")]
    s.scan_hf_cache = bool(cfg.scan_hf_cache)
    s.sessions_dir = cfg.resolved_sessions_dir
    s.sampler = _sampler_from(cfg, s.sampler)
    s.endpoints = _endpoints_from(cfg)
    return s


def _endpoints_from(cfg: Any) -> dict[str, Any]:
    from lemlab.core.endpoints import endpoints_from_config

    try:
        return dict(endpoints_from_config(getattr(cfg, "endpoints", None) or {}))
    except Exception:  # noqa: BLE001 - load_config already checked them; never stop the TUI
        return {}


def _sampler_from(cfg: Any, default: Sampler) -> Sampler:
    src = getattr(cfg, "sampling", None) or getattr(cfg, "sampler", None) or cfg
    get = (lambda k, d: src.get(k, d)) if isinstance(src, dict) else (lambda k, d: getattr(src, k, d))
    try:
        return Sampler(
            temperature=float(get("temperature", default.temperature)),
            top_p=float(get("top_p", default.top_p)),
            max_tokens=int(get("max_tokens", default.max_tokens)),
            seed=get("seed", default.seed),
        )
    except (TypeError, ValueError):
        return default


def score_reply(text: str, prompt: str) -> tuple[float | None, list[str]]:
    """Default scorer's lek_score and failure-mode labels; (None, []) while scorers are missing."""
    score: float | None = None
    labels: list[str] = []
    try:
        from lemlab.core.scoring import get_scorer

        score = float(get_scorer("v2").score(text)["lek_score"])
    except Exception:  # noqa: BLE001 - scoring is an extra; a missing scorer never breaks chat
        score = None
    try:
        from lemlab.core.failure_modes import detect

        labels = [_label(x) for x in detect(text, prompt)]
    except Exception:  # noqa: BLE001
        labels = []
    return score, labels


def _label(item: Any) -> str:
    for attr in ("label", "name", "code"):
        if hasattr(item, attr):
            return str(getattr(item, attr))
    return str(item)
