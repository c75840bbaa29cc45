"""`lemlab make-tiny-model OUT`: a random-weight model with a real tokenizer, built offline."""

from __future__ import annotations

import argparse

from lemlab.core.errors import LemlabError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="folder to write the model into")
    p.add_argument("--model-type", default="gemma3_text", choices=["gemma3_text", "llama", "qwen2"])
    p.add_argument(
        "--no-system-role",
        action="store_true",
        help="use a chat template that rejects system messages (tests the kernel fallback)",
    )
    p.add_argument("--hidden", type=int, default=64, help="hidden size (multiple of 32, >= 64)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from lemlab.engine.tiny import build_tiny_model

    if args.layers < 1:
        raise LemlabError("--layers must be at least 1")
    try:
        out = build_tiny_model(
            args.out,
            model_type=args.model_type,
            system_role=not args.no_system_role,
            hidden=args.hidden,
            layers=args.layers,
            seed=args.seed,
        )
    except ValueError as exc:
        raise LemlabError(str(exc)) from exc
    except OSError as exc:
        raise LemlabError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    print(f"wrote tiny {args.model_type} model to {out} (random weights: output is noise)")
    return 0
