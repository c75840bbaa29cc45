"""The embedded demo model: built once into get_paths().demo_model_dir by a child process.

A child process, not a thread: building uses MLX, and only the engine thread may touch MLX in
this process (a second MLX thread that exits can abort the whole app, notes/mlx-on-linux.md)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.paths import get_paths


def demo_ready(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


async def ensure_demo_model(path: Path | None = None) -> Path:
    path = path or get_paths().demo_model_dir
    if demo_ready(path):
        return path
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lemlab", "make-tiny-model", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0 or not demo_ready(path):
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise LemlabError(f"could not build the demo model in {path}: {last}")
    return path
