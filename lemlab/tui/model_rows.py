"""Rows for the Models pane, from lemlab.core.discovery (configured folders, HF cache, demo)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lemlab.core.paths import get_paths


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


def scan(dirs: list[Path], hf_cache: bool = True) -> tuple[list[ModelRow], list[AdapterRow], list[str]]:
    """(models, adapters, problems) from core.discovery, plus the demo model when built.
    Never raises: an unreadable folder becomes a problem line."""
    from lemlab.core.discovery import discover

    demo = get_paths().demo_model_dir
    folders = [*dirs, demo] if demo.is_dir() else list(dirs)
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
    if not n:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


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
