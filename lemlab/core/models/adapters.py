"""mlx-lm LoRA adapter folders: read their config and checkpoints, and tell whether an adapter
belongs to a given base model.

An adapter whose tensor names match loads onto another base model without complaint, so the
caller asks check_adapter_base() before loading and shows its one-line warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.errors import DataError, LemlabError
from lemlab.core.models.folder import (
    display_name,
    folder_size,
    hf_repo_id,
    logical_shape,
    read_json_object,
    read_model_config,
    read_weight_shapes,
    text_config,
)
from lemlab.core.models.safetensors_header import SafetensorsHeaderError, TensorInfo, read_header

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapters.safetensors"
CHECKPOINT_RE = re.compile(r"^(\d{7})_adapters\.safetensors$")
_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@dataclass
class AdapterInfo:
    """What adapter_config.json and the folder say about one adapter."""

    path: Path
    base_model: str  # adapter_config.json's `model`, as written (may be relative or an HF id)
    rank: int | None
    scale: float | None
    dropout: float | None
    num_layers: int | None
    fine_tune_type: str
    iters: int | None
    learning_rate: float | None
    batch_size: int | None
    checkpoints: list[tuple[int, Path]] = field(default_factory=list)
    size_bytes: int = 0
    has_final_weights: bool = False  # adapters.safetensors present
    grad_accumulation_steps: int | None = None
    data: str = ""  # adapter_config.json's `data` folder, as written
    optimizer: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def effective_gradient(self) -> int | None:
        """iters x batch size: how many examples' gradients the adapter received (the seed
        addendum's "effective gradient": 500 iters at batch 4 = ~2000 steps at batch 1).
        mlx-lm's iters count batches, so gradient accumulation does not change it."""
        if self.iters is None or self.batch_size is None:
            return None
        return self.iters * self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "base_model": self.base_model,
            "rank": self.rank,
            "scale": self.scale,
            "dropout": self.dropout,
            "num_layers": self.num_layers,
            "fine_tune_type": self.fine_tune_type,
            "iters": self.iters,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "checkpoints": [{"iteration": i, "path": str(p)} for i, p in self.checkpoints],
            "size_bytes": self.size_bytes,
            "has_final_weights": self.has_final_weights,
            "grad_accumulation_steps": self.grad_accumulation_steps,
            "effective_gradient": self.effective_gradient,
            "data": self.data,
            "optimizer": self.optimizer,
        }


def is_adapter_dir(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file()


def read_adapter_config(adapter_dir: str | Path) -> dict[str, Any]:
    """adapter_config.json as a dict; LemlabError (one line) when missing or malformed."""
    d = Path(adapter_dir)
    if not d.is_dir():
        raise LemlabError(f"adapter folder not found: {d}")
    if not (d / ADAPTER_CONFIG).is_file():
        raise LemlabError(f"{d} is not an adapter folder (no {ADAPTER_CONFIG})")
    return read_json_object(d / ADAPTER_CONFIG, ADAPTER_CONFIG)


def list_checkpoints(adapter_dir: str | Path) -> list[tuple[int, Path]]:
    """(iteration, file) for each `NNNNNNN_adapters.safetensors`, sorted by iteration."""
    d = Path(adapter_dir)
    found = []
    for p in d.glob("*_adapters.safetensors"):
        m = CHECKPOINT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def resolve_adapter(path: str | Path) -> tuple[Path, Path]:
    """(adapter_dir, weights_file) from an adapter folder or a checkpoint file inside one.

    A folder without adapters.safetensors (a run stopped before its first save of the final file)
    falls back to its latest checkpoint.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise LemlabError(f"adapter not found: {p}")
    if p.is_file():
        if not p.name.endswith(".safetensors"):
            raise LemlabError(f"{p} is not an adapter weights file (.safetensors)")
        read_adapter_config(p.parent)  # the checkpoint's folder must hold the config
        return p.parent, p
    read_adapter_config(p)
    if (p / ADAPTER_WEIGHTS).is_file():
        return p, p / ADAPTER_WEIGHTS
    checkpoints = list_checkpoints(p)
    if not checkpoints:
        raise LemlabError(f"adapter folder {p} has no {ADAPTER_WEIGHTS} and no checkpoints")
    return p, checkpoints[-1][1]


def read_adapter_info(adapter_dir: str | Path) -> AdapterInfo:
    """AdapterInfo for a folder; LemlabError when adapter_config.json is missing or malformed."""
    d = Path(adapter_dir)
    cfg = read_adapter_config(d)
    raw_lora = cfg.get("lora_parameters")
    lora: dict[str, Any] = raw_lora if isinstance(raw_lora, dict) else {}
    return AdapterInfo(
        path=d,
        base_model=str(cfg.get("model") or ""),
        rank=_opt(int, lora.get("rank")),
        scale=_opt(float, lora.get("scale", lora.get("alpha"))),
        dropout=_opt(float, lora.get("dropout")),
        num_layers=_opt(int, cfg.get("num_layers")),
        fine_tune_type=str(cfg.get("fine_tune_type") or "lora"),
        iters=_opt(int, cfg.get("iters")),
        learning_rate=_opt(float, cfg.get("learning_rate")),
        batch_size=_opt(int, cfg.get("batch_size")),
        checkpoints=list_checkpoints(d),
        size_bytes=folder_size(d),
        has_final_weights=(d / ADAPTER_WEIGHTS).is_file(),
        grad_accumulation_steps=_opt(int, cfg.get("grad_accumulation_steps")),
        data=str(cfg.get("data") or ""),
        optimizer=str(cfg.get("optimizer") or ""),
    )


def _opt(kind: type, value: Any) -> Any:
    try:
        return None if value is None or isinstance(value, bool) else kind(value)
    except (TypeError, ValueError):
        return None


# --- does this adapter belong to that base model? -------------------------------------------


def resolve_base_reference(
    adapter_dir: str | Path, model: str, cfg: dict[str, Any] | None = None
) -> Path | None:
    """The local model folder adapter_config.json's `model` points at, if one exists.

    A relative path was relative to the training's working directory: recovered from the
    config's own relative `adapter_path` when it ends the folder's path, else tried against the
    adapter folder's parent and the current directory.
    """
    if not model:
        return None
    p = Path(model).expanduser()
    d = Path(adapter_dir).absolute()
    bases = [] if p.is_absolute() else [*_training_cwd(d, cfg), d.parent, Path.cwd()]
    for c in [p] if p.is_absolute() else [b / p for b in bases]:
        if (c / "config.json").is_file():
            return c.resolve()
    return None


def _training_cwd(adapter_dir: Path, cfg: dict[str, Any] | None) -> list[Path]:
    written = Path(str((cfg or {}).get("adapter_path") or ""))
    parts = [x for x in written.parts if x not in (".", "")]
    if not parts or written.is_absolute() or ".." in parts:
        return []
    if list(adapter_dir.parts[-len(parts) :]) != parts or len(adapter_dir.parts) <= len(parts):
        return []
    return [Path(*adapter_dir.parts[: -len(parts)])]


def check_adapter_base(adapter_dir: str | Path, model_path: str | Path) -> str | None:
    """One-line warning when the adapter was trained on another model than model_path, or when
    its LoRA tensors cannot fit that model; None when they match or cannot be told apart."""
    d = Path(adapter_dir)
    base = Path(model_path).expanduser()
    cfg = read_adapter_config(d)
    base_cfg = _config_or_none(base)
    name_problem = _name_mismatch(d, cfg, base, base_cfg)
    misfit = _shape_mismatch(d, base, base_cfg) if base_cfg is not None else None
    if name_problem and misfit:
        return f"{name_problem}, and does not fit it: {misfit}"
    if misfit:
        return f"adapter {d.name} does not fit {display_name(base)}: {misfit}"
    return name_problem


def _config_or_none(model_dir: Path) -> dict[str, Any] | None:
    try:
        return text_config(read_model_config(model_dir))
    except DataError:
        return None


def _name_mismatch(
    adapter_dir: Path, cfg: dict[str, Any], base: Path, base_cfg: dict[str, Any] | None
) -> str | None:
    written = str(cfg.get("model") or "")
    if not written:
        return None  # older or hand-written configs: nothing to compare
    ref_dir = resolve_base_reference(adapter_dir, written, cfg)
    if _same_model(written, ref_dir, base):
        return None
    ref_type = _model_type(ref_dir)
    base_type = (base_cfg or {}).get("model_type")
    trained = f"{written} ({ref_type})" if ref_type and ref_type != base_type else written
    on = (
        f"{display_name(base)} ({base_type})"
        if ref_type and base_type and ref_type != base_type
        else str(base)
    )
    return f"adapter {adapter_dir.name} was trained on {trained}, not on {on}"


def _same_model(written: str, ref_dir: Path | None, base: Path) -> bool:
    return _match_strength(written, ref_dir, base) > 0


def base_match_strength(
    adapter_dir: str | Path, model_path: str | Path, cfg: dict[str, Any] | None = None
) -> int:
    """How surely the adapter's recorded base is model_path: 3 same folder (through symlinks or a
    relative path), 2 same Hub repo id, 1 same name, 0 no match (or nothing recorded)."""
    cfg = read_adapter_config(adapter_dir) if cfg is None else cfg
    written = str(cfg.get("model") or "")
    if not written:
        return 0
    ref_dir = resolve_base_reference(adapter_dir, written, cfg)
    return _match_strength(written, ref_dir, Path(model_path).expanduser())


def _match_strength(written: str, ref_dir: Path | None, base: Path) -> int:
    base_real = _real(base)
    if ref_dir is not None and base_real is not None and ref_dir == base_real:
        return 3
    ref_id = (hf_repo_id(written) or _hf_id_like(written) or "").lower()
    base_id = (hf_repo_id(base) or hf_repo_id(base_real or base) or "").lower()
    if ref_id and base_id and ref_id == base_id:
        return 2
    # The id's or path's last component naming the folder (or the cached repo) counts as a match.
    ref_names = {_last(written)} | ({ref_dir.name.lower()} if ref_dir else set())
    if ref_id:
        ref_names.add(ref_id.rsplit("/", 1)[-1])
    base_names = {base.name.lower()} | ({base_id.rsplit("/", 1)[-1]} if base_id else set())
    if base_real is not None:
        base_names.add(base_real.name.lower())
    return 1 if ref_names & base_names else 0


def _real(p: Path) -> Path | None:
    try:
        return p.resolve(strict=True)
    except (OSError, RuntimeError):
        return None


def _hf_id_like(s: str) -> str | None:
    """`org/name` written as a Hub id (not an existing path, not absolute)."""
    parts = s.strip("/").split("/")
    if len(parts) == 2 and not s.startswith((".", "/", "~")) and all(parts):
        return s.strip("/")
    return None


def _last(s: str) -> str:
    p = Path(s.rstrip("/"))
    repo = hf_repo_id(p)
    if repo and re.fullmatch(r"[0-9a-f]{7,64}", p.name):
        return repo.rsplit("/", 1)[-1].lower()  # a snapshot hash is not a name
    return p.name.lower()


def _model_type(model_dir: Path | None) -> str | None:
    if model_dir is None:
        return None
    cfg = _config_or_none(model_dir)
    return str(cfg.get("model_type")) if cfg and cfg.get("model_type") else None


def _shape_mismatch(adapter_dir: Path, base: Path, base_cfg: dict[str, Any]) -> str | None:
    """Why the adapter's LoRA tensors cannot fit the base's weights (or, lacking readable
    weights, its config's hidden_size / num_hidden_layers); None when they fit."""
    try:
        _, weights = resolve_adapter(adapter_dir)
        lora = read_header(weights)
    except (LemlabError, SafetensorsHeaderError):
        return None  # unreadable adapter weights: the loader will say so
    layers = base_cfg.get("num_hidden_layers")
    top = max((int(m.group(1)) for k in lora if (m := _LAYER_RE.search(k))), default=-1)
    if isinstance(layers, int) and top >= layers:
        return f"it has tensors for layer {top}, the model has {layers} layer(s) (0-{layers - 1})"
    try:
        base_shapes = read_weight_shapes(base)
    except SafetensorsHeaderError:
        base_shapes = {}
    for module, (a, b) in _lora_pairs(lora).items():
        problem = _module_misfit(module, a, b, base_shapes, base_cfg)
        if problem:
            return problem
    return None


def weights_misfit(
    weights: str | Path, model_dir: str | Path, rank: int | None = None
) -> str | None:
    """Why LoRA weights in one file (e.g. train --resume-adapter-file) cannot be loaded onto
    this model at this rank; None when they fit. Read from headers only, so a preflight can say
    it before a trainer starts and creates its output folder."""
    try:
        lora = read_header(Path(weights))
    except SafetensorsHeaderError as exc:
        return f"unreadable weights ({exc})"
    pairs = _lora_pairs(lora)
    if not pairs:
        return "no LoRA tensors (lora_a / lora_b) in it"
    base = Path(model_dir)
    cfg = read_model_config(base)
    layers = cfg.get("num_hidden_layers")
    top = max((int(m.group(1)) for k in lora if (m := _LAYER_RE.search(k))), default=-1)
    if isinstance(layers, int) and top >= layers:
        return f"it has tensors for layer {top}, the model has {layers} layer(s) (0-{layers - 1})"
    try:
        base_shapes = read_weight_shapes(base)
    except SafetensorsHeaderError:
        base_shapes = {}
    for module, (a, b) in pairs.items():
        if rank is not None and a.shape[1] != rank:
            return f"it was trained at rank {a.shape[1]}, this run uses rank {rank}"
        problem = _module_misfit(module, a, b, base_shapes, cfg)
        if problem:
            return problem
    return None


def _lora_pairs(lora: dict[str, TensorInfo]) -> dict[str, tuple[TensorInfo, TensorInfo]]:
    pairs: dict[str, tuple[TensorInfo, TensorInfo]] = {}
    for key, a in lora.items():
        if key.endswith(".lora_a") and len(a.shape) == 2:  # 3-D = mixture of experts: skipped
            module = key[: -len(".lora_a")]
            b = lora.get(module + ".lora_b")
            if b is not None and len(b.shape) == 2:
                pairs[module] = (a, b)
    return pairs


def _module_misfit(
    module: str,
    a: TensorInfo,
    b: TensorInfo,
    base_shapes: dict[str, TensorInfo],
    cfg: dict[str, Any],
) -> str | None:
    in_dim, out_dim = a.shape[0], b.shape[1]
    w = base_shapes.get(module + ".weight") or _by_suffix(module + ".weight", base_shapes)
    if w is not None and len(w.shape) == 2:
        rows, cols = logical_shape(w, cfg)
        # Linear: lora_a (in, r), lora_b (r, out), weight (out, in). Embedding: (vocab, r), (r, dims).
        if (in_dim, out_dim) in {(cols, rows), (rows, cols)}:
            return None
        return f"{module} maps {in_dim}->{out_dim}, the model's weight is {rows}x{cols}"
    if base_shapes:
        return f"{module} is not in the model"
    hidden = cfg.get("hidden_size")
    leaf = module.rsplit(".", 1)[-1]
    if isinstance(hidden, int):
        if leaf in {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"} and in_dim != hidden:
            return f"{module} takes {in_dim} inputs, the model's hidden_size is {hidden}"
        if leaf in {"o_proj", "down_proj"} and out_dim != hidden:
            return f"{module} gives {out_dim} outputs, the model's hidden_size is {hidden}"
    return None


def _by_suffix(key: str, shapes: dict[str, TensorInfo]) -> TensorInfo | None:
    """Same tensor under another prefix (e.g. `language_model.` in multimodal checkpoints)."""
    m = _LAYER_RE.search(key)
    if m is None:
        return None
    tail = key[m.start() :].lstrip(".")
    hits = [t for k, t in shapes.items() if k.endswith("." + tail) or k == tail]
    return hits[0] if len(hits) == 1 else None


def adapter_dirs_under(root: Path) -> list[Path]:
    """Adapter folders directly in root or root itself (for pickers that list a runs folder)."""
    if is_adapter_dir(root):
        return [root]
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and is_adapter_dir(p))
    except OSError:
        return []


__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "AdapterInfo",
    "adapter_dirs_under",
    "base_match_strength",
    "check_adapter_base",
    "is_adapter_dir",
    "list_checkpoints",
    "read_adapter_config",
    "read_adapter_info",
    "resolve_adapter",
    "resolve_base_reference",
]
