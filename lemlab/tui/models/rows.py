"""Rows for the Models pane, from lemlab.core.models.discovery (configured folders, HF cache, demo)
and from the configured endpoints (the models each server lists)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.models.discovery import discover, lab_folders
from lemlab.core.remote.endpoints import NAMED_PREFIX


@dataclass(frozen=True)
class ModelRow:
    name: str
    path: str
    type: str = ""
    params: str = ""
    quant: str = ""
    layers: str = ""
    size: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.name, self.type, self.params, self.quant, self.layers, self.size)


@dataclass(frozen=True)
class AdapterRow:
    name: str
    path: str
    base: str = ""
    rank: str = ""
    scale: str = ""
    layers: str = ""
    iters: str = ""
    lr: str = ""
    checkpoints: str = ""
    checkpoint_files: tuple[tuple[int, str], ...] = ()  # (iteration, file), loadable as adapters

    def cells(self) -> tuple[str, ...]:
        return (self.name, self.rank, self.scale, self.layers, self.iters, self.lr,
                self.checkpoints, self.base)  # fmt: skip


MODEL_COLUMNS = ("name", "type", "params", "quant", "layers", "size")
ADAPTER_COLUMNS = ("adapter", "rank", "scale", "layers", "iters", "lr", "ckpts", "base")


def human_size(n: int | float | None) -> str:
    if not n:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _txt(value: object) -> str:
    return "" if value is None else str(value)


def scan(
    dirs: list[Path], hf_cache: bool = True
) -> tuple[list[ModelRow], list[AdapterRow], list[str]]:
    """(models, adapters, problems) from core.discovery over lab_folders(dirs): the runs
    folder, the demo models and recently opened folders too, as `lemlab models` scans.
    Never raises: an unreadable folder becomes a problem line."""
    folders = lab_folders(dirs)
    try:
        found = discover(folders, include_hf_cache=hf_cache)
    except Exception as exc:  # noqa: BLE001 - a scan failure is a status line, not a crash
        return [], [], [f"scan failed: {exc}"]
    models = [model_row(m) for m in found.models]
    adapters = [adapter_row(a) for a in found.adapters]
    return models, adapters, [f"{p.path}: {p.problem}" for p in found.problems]


def model_row(m: object) -> ModelRow:
    g = lambda k: getattr(m, k, None)  # noqa: E731 - tiny accessor
    params = g("params")
    return ModelRow(
        str(g("name")) + (" (demo)" if g("is_demo") else ""), str(g("path")), _txt(g("model_type")),
        human_count(params), _txt(g("quantization")), _txt(g("layers")), human_size(g("size_bytes")),
    )  # fmt: skip


def human_count(n: int | None) -> str:
    from lemlab.core.models.discovery import (
        params_label,  # written one way, as `lemlab models` does
    )

    return params_label(n)


def adapter_row(entry: object) -> AdapterRow:
    a = getattr(entry, "info", entry)
    base = getattr(entry, "base", None)
    g = lambda k: getattr(a, k, None)  # noqa: E731 - tiny accessor
    lr = g("learning_rate")
    return AdapterRow(
        Path(str(g("path"))).name, str(g("path")),
        str(getattr(base, "path", "")) or _txt(g("base_model")), _txt(g("rank")),
        _txt(g("scale")), _txt(g("num_layers")), _txt(g("iters")),
        f"{lr:.0e}" if isinstance(lr, float) else _txt(lr), str(len(g("checkpoints") or [])),
        tuple((int(i), str(f)) for i, f in g("checkpoints") or []),
    )  # fmt: skip


# --- endpoints (OpenAI-compatible servers from config.toml's [endpoints.NAME]) ----------------

ENDPOINT_COLUMNS = ("endpoint", "model", "url", "status")
ENDPOINT_TIMEOUT = 5.0  # seconds to wait for a server's model list


@dataclass(frozen=True)
class EndpointRow:
    """One model a server lists (spec loads it), or one line for a server that did not answer."""

    name: str
    spec: str  # endpoint:NAME#MODEL (or endpoint:NAME): what the router loads
    url: str
    model: str = ""
    status: str = "ok"

    def cells(self) -> tuple[str, ...]:
        return (self.name, self.model, self.url, self.status)


def scan_endpoints(
    endpoints: Mapping[str, Any], timeout: float = ENDPOINT_TIMEOUT
) -> list[EndpointRow]:
    """Ask every endpoint for its models at once (plain HTTP, no MLX); never raises."""
    if not endpoints:
        return []
    with ThreadPoolExecutor(
        max_workers=min(8, len(endpoints)), thread_name_prefix="endpoints"
    ) as pool:
        found = list(pool.map(lambda item: endpoint_rows(*item, timeout), endpoints.items()))
    return [row for rows in found for row in rows]


def endpoint_rows(name: str, endpoint: Any, timeout: float = ENDPOINT_TIMEOUT) -> list[EndpointRow]:
    from lemlab.engine.remote import list_models  # standard library HTTP only

    base = NAMED_PREFIX + name
    if endpoint.model:  # the config names the model: that is what a load asks for
        return [EndpointRow(name, f"{base}#{endpoint.model}", endpoint.url, endpoint.model,
                            _reachable(endpoint, timeout))]  # fmt: skip
    try:
        models = list_models(endpoint, timeout)
    except Exception as exc:  # noqa: BLE001 - an unreachable server is one line, not a crash
        return [EndpointRow(name, base, endpoint.url, "", _one_line(exc))]
    if not models:
        return [EndpointRow(name, base, endpoint.url, "(server default)", "no model list")]
    return [EndpointRow(name, f"{base}#{m}", endpoint.url, m) for m in models]


def _reachable(endpoint: Any, timeout: float) -> str:
    from lemlab.engine.remote import list_models

    try:
        list_models(endpoint, timeout)
    except Exception as exc:  # noqa: BLE001
        return _one_line(exc)
    return "ok"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:119] + "…"
