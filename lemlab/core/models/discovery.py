"""Find MLX models and LoRA adapters: the Hugging Face hub cache plus configured folders.

Everything is read from files (config.json, safetensors headers); nothing is loaded. Broken
folders become `Problem` entries with a reason: a scan never fails because of one bad folder.
Adapters are paired with the discovered model they were trained on, when it can be found.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import (
    ADAPTER_CONFIG,
    AdapterInfo,
    base_match_strength,
    check_adapter_base,
    read_adapter_config,
    read_adapter_info,
    resolve_base_reference,
)
from lemlab.core.models.demo import RANDOM_MARKER as DEMO_MARKER
from lemlab.core.models.demo import demo_models_root, random_demo_dir
from lemlab.core.models.folder import (
    CONFIG_FILE,
    display_name,
    folder_size,
    hf_repo_id,
    quant_bits,
    read_json_object,
    read_model_config,
    safe_header,
    text_config,
    weight_files,
)
from lemlab.core.models.recent import load_recent
from lemlab.core.models.safetensors_header import TensorInfo
from lemlab.core.paths import get_paths

DEFAULT_MAX_DEPTH = 4
# Folders never worth descending into while looking for models.
_SKIP_DIRS = {
    ".git",
    ".hg",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".cache",
    "site-packages",
}


@dataclass
class ModelEntry:
    """One loadable model folder (for an HF cache repo: its snapshot folder)."""

    path: Path
    name: str
    model_type: str | None
    params: int | None  # see count_parameters(): an estimate for quantized weights
    size_bytes: int
    quantization: str  # "4-bit g64", "8-bit g32 mxfp8", or "none"
    layers: int | None
    hidden_size: int | None
    is_demo: bool
    source: str  # "hf-cache" | "folder" | "adapter-base"
    repo_id: str | None = None
    dtype: str | None = None  # the most common weight dtype, e.g. "BF16" or "U32" (packed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "name": self.name,
            "repo_id": self.repo_id,
            "model_type": self.model_type,
            "params": self.params,
            "size_bytes": self.size_bytes,
            "quantization": self.quantization,
            "layers": self.layers,
            "hidden_size": self.hidden_size,
            "dtype": self.dtype,
            "is_demo": self.is_demo,
            "source": self.source,
        }


@dataclass
class AdapterEntry:
    """An adapter folder, with the discovered base model it belongs to (None if not found)."""

    info: AdapterInfo
    source: str
    base: ModelEntry | None = None
    base_warning: str | None = None  # check_adapter_base() against the paired base

    @property
    def path(self) -> Path:
        return self.info.path

    def to_dict(self) -> dict[str, Any]:
        d = self.info.to_dict()
        d["source"] = self.source
        d["base"] = (
            None if self.base is None else {"path": str(self.base.path), "name": self.base.name}
        )
        d["base_warning"] = self.base_warning
        return d


@dataclass
class Problem:
    """A folder that looks like a model or adapter but cannot be used, and why."""

    path: Path
    kind: str  # "model" | "adapter" | "cache" | "folder"
    problem: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "problem": self.problem,
            "source": self.source,
        }


@dataclass
class Discovery:
    models: list[ModelEntry] = field(default_factory=list)
    adapters: list[AdapterEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": [m.to_dict() for m in self.models],
            "adapters": [a.to_dict() for a in self.adapters],
            "problems": [p.to_dict() for p in self.problems],
        }

    def extend(self, other: Discovery) -> None:
        self.models += other.models
        self.adapters += other.adapters
        self.problems += other.problems


# --- one model folder -----------------------------------------------------------------------


def inspect_model(path: Path, source: str = "folder") -> ModelEntry | Problem:
    """A ModelEntry for a folder holding config.json and safetensors weights, else a Problem."""
    try:
        cfg = read_model_config(path)
    except LemlabError as exc:
        return Problem(path, "model", str(exc).replace(f"{path}{os.sep}", ""), source)
    files = weight_files(path)
    if not files:
        return Problem(
            path, "model", "no .safetensors weights (not an MLX model, or incomplete)", source
        )
    missing = _missing_shards(path)
    if missing:
        return Problem(
            path, "model", f"missing weight shard {missing} (incomplete download?)", source
        )
    tensors: dict[str, TensorInfo] = {}
    for f in files:
        header, reason = safe_header(f)
        if header is None:
            return Problem(path, "model", f"corrupt weights: {reason}", source)
        tensors.update(header)
    tcfg = text_config(cfg)
    return ModelEntry(
        path=path,
        name=display_name(path),
        model_type=_opt_str(tcfg.get("model_type") or cfg.get("model_type")),
        params=count_parameters(tensors, cfg),
        size_bytes=folder_size(path),
        quantization=quantization_label(cfg),
        layers=_opt_int(tcfg.get("num_hidden_layers") or tcfg.get("n_layers")),
        hidden_size=_opt_int(tcfg.get("hidden_size") or tcfg.get("d_model")),
        is_demo=(path / DEMO_MARKER).exists(),
        source=source,
        repo_id=hf_repo_id(path),
        dtype=_main_dtype(tensors),
    )


def _missing_shards(path: Path) -> str | None:
    index = path / "model.safetensors.index.json"
    if not index.is_file():
        return None
    try:
        weight_map = read_json_object(index).get("weight_map", {})
    except LemlabError:
        return None  # the shards themselves are what loading needs; a bad index is not fatal
    for shard in sorted(set(weight_map.values()) if isinstance(weight_map, dict) else ()):
        if not (path / str(shard)).is_file():
            return str(shard)
    return None


def count_parameters(tensors: dict[str, TensorInfo], cfg: dict[str, Any]) -> int:
    """Parameter count from shapes alone.

    MLX-quantized weights are uint32 words each packing 32/bits values, so they count
    numel * 32 / bits; their `.scales` / `.biases` are quantization overhead and are not counted.
    Every stored tensor counts: tied checkpoints do not store `lm_head`, and where one is stored
    (e.g. gemma3_text) mlx-lm loads and uses it as its own weight. For mixed-precision
    configs the per-module bits are used when config.json lists them, else the global bits: an
    estimate, within a few percent of the published size for the usual 4/8-bit models.
    """
    quantized = {
        n[: -len(".weight")]
        for n, t in tensors.items()
        if n.endswith(".weight") and t.dtype == "U32"
    }
    total = 0
    for name, t in tensors.items():
        module, _, leaf = name.rpartition(".")
        if module in quantized and leaf in ("scales", "biases"):
            continue
        bits = quant_bits(cfg, module) if module in quantized else None
        total += t.numel * 32 // bits if bits else t.numel
    return total


def model_parameters(path: str | Path) -> int | None:
    """count_parameters() for a model folder (None when its config or headers can't be read):
    the one parameter count lemlab shows, in the Models pane, `lemlab models` and training."""
    p = Path(path)
    try:
        cfg = read_model_config(p)
    except LemlabError:
        return None
    tensors: dict[str, TensorInfo] = {}
    for f in weight_files(p):
        header, _ = safe_header(f)
        if header is None:
            return None
        tensors.update(header)
    return count_parameters(tensors, cfg) if tensors else None


def params_label(n: int | None) -> str:
    """How a parameter count is written everywhere: 134.5M, 1.2B ("?" unknown)."""
    if not n:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def quantization_label(cfg: dict[str, Any]) -> str:
    q = cfg.get("quantization") or cfg.get("quantization_config")
    if not isinstance(q, dict) or not q.get("bits"):
        return "none"
    label = f"{q['bits']}-bit g{q.get('group_size', 64)}"
    mode = q.get("mode")
    return f"{label} {mode}" if mode and mode != "affine" else label


def _main_dtype(tensors: dict[str, TensorInfo]) -> str | None:
    counts: Counter[str] = Counter()
    for t in tensors.values():
        counts[t.dtype] += t.numel
    return counts.most_common(1)[0][0] if counts else None


def _opt_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _opt_str(v: Any) -> str | None:
    return str(v) if v else None


# --- the Hugging Face cache -----------------------------------------------------------------


def hf_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads, read from the environment now (its own constants
    are frozen when it is first imported)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def scan_hf_cache(cache_dir: Path | None = None, source: str = "hf-cache") -> Discovery:
    """Models (and adapters) in the hub cache; one snapshot per repo: the one `main` points at,
    else the newest."""
    cache = cache_dir or hf_cache_dir()
    found = Discovery()
    if not cache.is_dir():
        return found
    for repo_id, snapshot in _cache_snapshots(cache, found, source):
        if (snapshot / ADAPTER_CONFIG).is_file():
            _add_adapter(found, snapshot, source)
        elif (snapshot / CONFIG_FILE).exists():
            _add(found, inspect_model(snapshot, source))
        else:
            found.problems.append(
                Problem(snapshot, "model", f"{repo_id}: no config.json in snapshot", source)
            )
    return found


def _cache_snapshots(cache: Path, found: Discovery, source: str) -> Iterator[tuple[str, Path]]:
    from huggingface_hub import scan_cache_dir  # here, not at the top: ~0.2 s the CLI's start needs

    try:
        info = scan_cache_dir(cache)
    except Exception as exc:  # noqa: BLE001 - CacheNotFound, permission errors: report, go on
        found.problems.append(Problem(cache, "cache", f"cannot scan: {exc}", source))
        return
    for w in info.warnings:
        found.problems.append(Problem(cache, "cache", str(w).splitlines()[0], source))
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revs = sorted(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified))
        yield repo.repo_id, Path(revs[-1].snapshot_path)


# --- configured folders ---------------------------------------------------------------------


def scan_folder(
    root: Path, max_depth: int = DEFAULT_MAX_DEPTH, source: str = "folder"
) -> Discovery:
    """Models and adapters in root and below (at most max_depth levels). A model or adapter
    folder is not descended into: its subfolders are its own files."""
    if any(root.glob("models--*")):
        return scan_hf_cache(root, source)  # a hub cache given as a folder: read it as one
    found = Discovery()
    for folder in _walk(root, max_depth):
        if (folder / ADAPTER_CONFIG).is_file():
            _add_adapter(found, folder, source)
        elif (folder / CONFIG_FILE).is_file():
            if _looks_like_model(folder):
                _add(found, inspect_model(folder, source))
        elif _has_orphan_weights(folder):
            found.problems.append(
                Problem(folder, "model", "safetensors weights without config.json", source)
            )
    return found


def _walk(root: Path, max_depth: int) -> Iterator[Path]:
    stack = [(root, 0)]
    seen: set[Path] = set()
    while stack:
        folder, depth = stack.pop()
        try:
            real = folder.resolve()
            if real in seen:
                continue  # symlink loops
            seen.add(real)
            yield folder
            if (
                depth >= max_depth
                or (folder / CONFIG_FILE).is_file()
                or (folder / ADAPTER_CONFIG).is_file()
            ):
                continue
            subs = sorted(p for p in folder.iterdir() if p.is_dir() and not _skipped(p.name))
        except OSError:
            continue
        stack.extend((s, depth + 1) for s in reversed(subs))


def _skipped(name: str) -> bool:
    return name in _SKIP_DIRS or name.startswith(".")


def _looks_like_model(folder: Path) -> bool:
    """config.json is common in other projects: require weights, tokenizer files or a model_type."""
    if any(folder.glob("*.safetensors")) or (folder / "tokenizer.json").exists():
        return True
    try:
        return "model_type" in read_model_config(folder)
    except LemlabError:
        return False


def _has_orphan_weights(folder: Path) -> bool:
    return any(folder.glob("model*.safetensors")) and (folder / "tokenizer.json").exists()


def _add(found: Discovery, entry: ModelEntry | Problem) -> None:
    if isinstance(entry, Problem):
        found.problems.append(entry)
    else:
        found.models.append(entry)


def _add_adapter(found: Discovery, folder: Path, source: str) -> None:
    try:
        info = read_adapter_info(folder)
    except LemlabError as exc:
        found.problems.append(Problem(folder, "adapter", str(exc), source))
        return
    if not info.has_final_weights and not info.checkpoints:
        found.problems.append(
            Problem(folder, "adapter", "no adapters.safetensors and no checkpoints", source)
        )
        return
    found.adapters.append(AdapterEntry(info, source))


# --- everything, paired ---------------------------------------------------------------------


def lab_folders(configured: Iterable[str | Path]) -> list[Path]:
    """Every folder a model list scans besides the HF cache: the configured ones, lemlab's runs
    folder (adapters trained by `lemlab train` and the Training pane), the demo model when
    built, and the folders opened recently by path. `lemlab models` and the Models pane both
    scan these, so they list the same things."""
    paths = get_paths()
    folders = [Path(f).expanduser() for f in configured]
    folders.append(paths.runs_dir)
    demos = (demo_models_root(), random_demo_dir(), paths.demo_model_dir)
    folders += [p for p in dict.fromkeys(demos) if p.is_dir()]
    for r in load_recent():
        folders += [Path(p) for p in (r.model, r.adapter) if p and Path(p).is_dir()]
    return folders


def discover(
    folders: Iterable[str | Path] = (),
    *,
    include_hf_cache: bool = True,
    cache_dir: Path | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Discovery:
    """Scan the HF cache and the given folders, drop duplicates (same real folder), and pair each
    adapter with its base model. Folders that do not exist are skipped (callers validate
    user-given paths themselves)."""
    found = Discovery()
    if include_hf_cache:
        found.extend(scan_hf_cache(cache_dir))
    for folder in folders:
        p = Path(folder).expanduser()
        if p.is_dir():
            found.extend(scan_folder(p, max_depth))
    found.models = _unique(found.models)
    found.adapters = _unique(found.adapters)
    found.problems = list({(str(p.path), p.problem): p for p in found.problems}.values())
    pair_adapters(found)
    return found


def _unique(items: list[Any]) -> list[Any]:
    seen: set[Path] = set()
    out = []
    for item in items:
        try:
            key = item.path.resolve()
        except OSError:
            key = item.path
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def pair_adapters(found: Discovery) -> None:
    """Set each adapter's base to the best-matching discovered model. A recorded base that
    exists on disk but was not discovered is inspected and added (source "adapter-base")."""
    for entry in found.adapters:
        try:
            cfg = read_adapter_config(entry.path)
        except LemlabError:
            continue
        best = _best_base(entry, cfg, found.models)
        if best is None:
            ref = resolve_base_reference(entry.path, str(cfg.get("model") or ""), cfg)
            extra = inspect_model(ref, "adapter-base") if ref is not None else None
            if isinstance(extra, ModelEntry):
                found.models.append(extra)
                best = extra
        entry.base = best
        if best is not None:
            entry.base_warning = check_adapter_base(entry.path, best.path)


def _best_base(
    entry: AdapterEntry, cfg: dict[str, Any], models: list[ModelEntry]
) -> ModelEntry | None:
    scored = [(base_match_strength(entry.path, m.path, cfg), i) for i, m in enumerate(models)]
    scored = [s for s in scored if s[0] > 0]
    if not scored:
        return None
    # Strongest match wins; among equals, the first found (HF cache before folders).
    return models[max(scored, key=lambda s: (s[0], -s[1]))[1]]


def find_model(found: Discovery, query: str) -> ModelEntry | None:
    """A discovered model by path, repo id or name (case-insensitive), for `--model NAME`."""
    q = query.lower().rstrip("/")
    for m in found.models:
        if q in {
            str(m.path).lower(),
            m.name.lower(),
            (m.repo_id or "").lower(),
            m.path.name.lower(),
        }:
            return m
    return None
