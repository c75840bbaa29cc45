"""Helpers shared by the training, watch, curriculum and adapter tests (no tests here): chat
data, real LoRA runs, the lemlab command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

QUESTIONS = ["What is honesty?", "Describe the sea.", "Why keep a notebook?", "What is consent?"]


def write_chat_data(folder: Path, n_train: int = 16, n_valid: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)

    def line(i: int) -> str:
        q = QUESTIONS[i % len(QUESTIONS)]
        msgs = [
            {"role": "user", "content": q},
            {"role": "assistant", "content": f"A careful answer, number {i}, about {q.lower()}"},
        ]
        return json.dumps({"messages": msgs}) + "\n"

    (folder / "train.jsonl").write_text("".join(line(i) for i in range(n_train)))
    (folder / "valid.jsonl").write_text("".join(line(i) for i in range(n_train, n_train + n_valid)))
    return folder


def train_lora(
    model: Path | str,
    data: Path | str,
    adapter: Path | str,
    *,
    iters: int = 4,
    batch_size: int = 1,
    num_layers: int = 1,
    save_every: int = 2,
    learning_rate: float | None = None,
    cwd: Path | None = None,
) -> Path:
    """A real LoRA run on a tiny model through `python -m mlx_lm lora` (~1 s), the way people
    start trainings; paths may be relative to `cwd`. Returns the adapter folder (under cwd)."""
    cmd = [
        sys.executable,
        "-m",
        "mlx_lm",
        "lora",
        "--model",
        str(model),
        "--train",
        "--data",
        str(data),
        "--iters",
        str(iters),
        "--batch-size",
        str(batch_size),
        "--num-layers",
        str(num_layers),
        "--adapter-path",
        str(adapter),
        "--steps-per-report",
        "2",
        "--steps-per-eval",
        "100",
        "--save-every",
        str(save_every),
    ]
    if learning_rate is not None:
        cmd += ["--learning-rate", str(learning_rate)]
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = (cwd or Path.cwd()) / adapter
    assert (out / "adapters.safetensors").is_file()
    return out


def lemlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lemlab", *map(str, args)]


def run_lemlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lemlab_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
