"""Model folders by path, without mlx: find the folder a name points at and tell the kinds
lemlab writes itself (a random-weight demo model, a fused model) by their marker files."""

from __future__ import annotations

from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.models.demo import RANDOM_MARKER

FUSED_MARKER = "lemlab-fused.json"  # written by `lemlab fuse` into the merged model's folder


def resolve_model_dir(model: str) -> Path:
    """A local model folder, or a Hugging Face id already in the local cache (never downloads)."""
    p = Path(model).expanduser()
    if not p.exists():
        cached = _hf_cached(model)
        if cached is None:
            raise LemlabError(f"model folder not found: {model}")
        p = cached
    if not p.is_dir():
        raise LemlabError(f"{p} is not a model folder (it is a file)")
    if not (p / "config.json").is_file():
        raise LemlabError(f"{p} is not a model folder (no config.json)")
    if not any(p.glob("*.safetensors")):
        raise LemlabError(f"{p} has no *.safetensors weights")
    return p


def _hf_cached(repo_id: str) -> Path | None:
    parts = repo_id.strip("/").split("/")
    if len(parts) != 2 or repo_id.startswith((".", "/", "~")):
        return None
    try:
        # Lazy: huggingface_hub costs ~0.2 s of start-up and only a hub id needs it.
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        return None


def is_demo_model(path: str | Path) -> bool:
    """A random-weight model written by `lemlab make-tiny-model` (its output is noise)."""
    return (Path(path) / RANDOM_MARKER).exists()


def is_fused(out: str | Path) -> bool:
    """A model `lemlab fuse` merged from a base and an adapter."""
    return (Path(out) / FUSED_MARKER).is_file()
