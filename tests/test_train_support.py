"""Helpers shared by the training, watch and curriculum tests (no tests here)."""

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
        msgs = [{"role": "user", "content": q},
                {"role": "assistant", "content": f"A careful answer, number {i}, about {q.lower()}"}]
        return json.dumps({"messages": msgs}) + "\n"

    (folder / "train.jsonl").write_text("".join(line(i) for i in range(n_train)))
    (folder / "valid.jsonl").write_text("".join(line(i) for i in range(n_train, n_train + n_valid)))
    return folder


def lemlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lemlab", *map(str, args)]


def run_lemlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(lemlab_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=dict(os.environ))


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
