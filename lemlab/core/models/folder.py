"""Facts about a model folder read from its files alone: config.json, safetensors headers,
Hugging Face cache layout. Shared by adapters.py (base checks) and discovery.py (listing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lemlab.core.errors import DataError
from lemlab.core.models.safetensors_header import SafetensorsHeaderError, TensorInfo, read_header

CONFIG_FILE = "config.json"


def read_json_object(path: Path, what: str = "") -> dict[str, Any]:
    """A JSON object from a file, or DataError in one line (with the line number when malformed)."""
    label = what or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(f"{label} not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from exc
    except RecursionError:
        raise DataError(f"{path}: malformed JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def read_model_config(model_dir: Path) -> dict[str, Any]:
    return read_json_object(model_dir / CONFIG_FILE, "config.json")


def text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs keep the language model's sizes under text_config."""
    inner = cfg.get("text_config")
    return (
        {**inner, **{k: v for k, v in cfg.items() if k not in inner}}
        if isinstance(inner, dict)
        else cfg
    )


def weight_files(model_dir: Path) -> list[Path]:
    """The model's safetensors shards (adapter weights are never model weights)."""
    return sorted(
        p for p in model_dir.glob("*.safetensors") if not p.name.endswith("adapters.safetensors")
    )


def read_weight_shapes(model_dir: Path) -> dict[str, TensorInfo]:
    """All tensors over all shards. Raises SafetensorsHeaderError for a corrupt shard."""
    shapes: dict[str, TensorInfo] = {}
    for f in weight_files(model_dir):
        shapes.update(read_header(f))
    return shapes


def quant_bits(cfg: dict[str, Any], module: str = "") -> int | None:
    """Bits per weight for a quantized module (per-module overrides win), None when unquantized."""
    q = cfg.get("quantization") or cfg.get("quantization_config")
    if not isinstance(q, dict):
        return None
    override = q.get(module)
    if isinstance(override, dict) and "bits" in override:
        return int(override["bits"])
    if override is False:
        return None
    bits = q.get("bits")
    return int(bits) if isinstance(bits, int) and bits > 0 else None


def logical_shape(info: TensorInfo, cfg: dict[str, Any]) -> tuple[int, ...]:
    """Shape before packing: an MLX-quantized weight is uint32 holding 32/bits values per item."""
    module = info.name.rsplit(".", 1)[0]
    bits = quant_bits(cfg, module)
    if info.dtype == "U32" and bits and info.shape:
        return (*info.shape[:-1], info.shape[-1] * 32 // bits)
    return info.shape


def hf_repo_id(path: str | Path) -> str | None:
    """`org/name` from a Hugging Face cache path (`.../models--org--name/snapshots/<hash>`)."""
    for part in reversed(Path(path).parts):
        if part.startswith("models--") and len(part) > len("models--"):
            return part[len("models--") :].replace("--", "/")
    return None


def display_name(path: Path) -> str:
    """The repo id for a cache snapshot (its folder name is a hash), else the folder name."""
    return hf_repo_id(path) or path.name


def folder_size(path: Path) -> int:
    """Bytes on disk of the files in a folder (symlinks followed once, as HF snapshots use them)."""
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def safe_header(path: Path) -> tuple[dict[str, TensorInfo] | None, str | None]:
    """(header, None) or (None, reason): for scans that list problems instead of failing."""
    try:
        return read_header(path), None
    except SafetensorsHeaderError as exc:
        return None, str(exc)
