"""`lemlab import-gguf SRC.gguf OUT`: a llama-architecture GGUF (Ollama, LM Studio, llama.cpp)
as an mlx_lm model folder, without re-quantizing its weights."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="the .gguf file (Q4_0, Q4_1, Q8_0, F16 or F32 tensors)")
    p.add_argument("out", help="folder to write the MLX model into (must not exist)")
    p.add_argument("--name", help="label for the model (default: the GGUF's general.name)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    from lemlab.engine.gguf_import import import_gguf

    out = import_gguf(Path(args.src).expanduser(), Path(args.out).expanduser(),
                      force=args.force, name=args.name)  # fmt: skip
    print(f"wrote MLX model to {out} (load it with --model {out})")
    return 0
