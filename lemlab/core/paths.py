"""Where lemlab keeps things. LEMLAB_HOME relocates everything (tests use it). No side effects on import."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

APP_NAME = "lemlab"
HOME_ENV = "LEMLAB_HOME"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def kernels_dir(self) -> Path:
        return self.data_dir / "kernels"

    @property
    def themes_dir(self) -> Path:
        return self.config_dir / "themes"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def demo_model_dir(self) -> Path:
        return self.cache_dir / "demo-model"


def get_paths() -> Paths:
    """Resolve paths now (not at import), so a changed LEMLAB_HOME is honoured."""
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config", root / "data", root / "cache")
    import platformdirs

    return Paths(
        Path(platformdirs.user_config_dir(APP_NAME)),
        Path(platformdirs.user_data_dir(APP_NAME)),
        Path(platformdirs.user_cache_dir(APP_NAME)),
    )


def repo_root() -> Path | None:
    """The source checkout, when lemlab runs from one (for the shipped probes/ and themes/)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else None


def shipped_dirs(name: str) -> list[Path]:
    """Folders of files shipped with lemlab (`probes`, `themes`): the checkout's top-level folder
    (editable installs) and the packaged copy under lemlab/data (wheels), each once."""
    candidates = []
    root = repo_root()
    if root is not None:
        candidates.append(root / name)
    packaged = resources.files("lemlab").joinpath("data", name)
    if isinstance(packaged, Path):  # an installed package on disk (not a zip import)
        candidates.append(packaged)
    seen: set[Path] = set()
    out: list[Path] = []
    for folder in candidates:
        real = folder.resolve()
        if folder.is_dir() and real not in seen:
            seen.add(real)
            out.append(folder)
    return out
