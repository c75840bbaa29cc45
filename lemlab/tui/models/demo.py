"""The embedded demo model, made once into the cache by a child process: the bundled real model
(SmolLM2-135M-Instruct, converted from its GGUF) when its package is installed, else the
random-weight tiny model.

A child process, not a thread: converting and building use MLX, and only the engine thread may
touch MLX in this process (a second MLX thread that exits can abort the whole app,
docs/mlx-on-linux.md)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.models.demo import (
    BUNDLED,
    bundled_gguf,
    folder_ready,
    random_demo_dir,
    real_demo_dir,
)


def demo_plan() -> tuple[Path, list[str], str]:
    """(folder, the lemlab command that makes it, what the status line says meanwhile)."""
    gguf = bundled_gguf()
    if gguf is not None:
        out = real_demo_dir()
        return (
            out,
            ["import-gguf", str(gguf), str(out), "--name", BUNDLED.name],
            (f"{BUNDLED.name} (converting once)"),
        )
    out = random_demo_dir()
    return out, ["make-tiny-model", str(out)], "demo model (building once)"


async def ensure_demo_model(plan: tuple[Path, list[str], str] | None = None) -> Path:
    path, command, _ = plan or demo_plan()
    if folder_ready(path):
        return path
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lemlab",
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    # Another lemlab may have finished the same folder first: its rename won, ours was refused.
    if folder_ready(path):
        return path
    last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
    raise LemlabError(f"could not make the demo model in {path}: {last}")
