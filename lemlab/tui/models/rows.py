"""Rows for the Models pane, from lemlab.core.models.discovery (configured folders, HF cache, demo)
and from the configured endpoints (the models each server lists)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.models.discovery import (
    AdapterEntry,
    ModelEntry,
    discover,
    lab_folders,
    params_label,
)
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
        return (
            self.name,
            self.rank,
            self.scale,
            self.layers,
            self.iters,
            self.lr,
            self.checkpoints,
            self.base,
        )


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


def model_row(m: ModelEntry) -> ModelRow:
    return ModelRow(
        m.name + (" (demo)" if m.is_demo else ""),
        str(m.path),
        _txt(m.model_type),
        human_count(m.params),
        _txt(m.quantization),
        _txt(m.layers),
        human_size(m.size_bytes),
    )


def human_count(n: int | None) -> str:
    return params_label(n)  # written one way, as `lemlab models` does


def adapter_row(entry: AdapterEntry) -> AdapterRow:
    a, lr = entry.info, entry.info.learning_rate
    return AdapterRow(
        a.path.name,
        str(a.path),
        str(entry.base.path) if entry.base else _txt(a.base_model),
        _txt(a.rank),
        _txt(a.scale),
        _txt(a.num_layers),
        _txt(a.iters),
        f"{lr:.0e}" if isinstance(lr, float) else _txt(lr),
        str(len(a.checkpoints)),
        tuple((int(i), str(f)) for i, f in a.checkpoints),
    )


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
        found = list(
            pool.map(lambda item: endpoint_rows(item[0], item[1], timeout), endpoints.items())
        )
    return [row for rows in found for row in rows]


def endpoint_rows(name: str, endpoint: Any, timeout: float = ENDPOINT_TIMEOUT) -> list[EndpointRow]:
    from lemlab.engine.remote import list_models  # lazy: httpx costs ~90 ms of start-up

    base = NAMED_PREFIX + name
    if endpoint.model:  # the config names the model: that is what a load asks for
        return [
            EndpointRow(
                name,
                f"{base}#{endpoint.model}",
                endpoint.url,
                endpoint.model,
                _reachable(endpoint, timeout),
            )
        ]
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
