"""The fuse child process: `python -m lemlab.engine.fuse_child --model M --adapter A --out OUT`.

Merges a LoRA adapter into its base model with mlx-lm's own pieces (load with the adapter,
each LoRA layer's `fuse`, `dequantize_model`, `save`), the way `mlx_lm fuse` does, plus two
things a staged curriculum needs:

- By default the merged model is NOT re-quantized. Re-quantizing a 4-bit base after adding the
  LoRA update rounds every touched weight onto a new 4-bit grid, and that rounding is larger
  than a small learning rate's update (the stage's training is lost). `--requantize` keeps the
  old behaviour for users who need the small model and accept the loss.
- With `--check-config ADAPTER/lemlab-train.toml` the validation loss on that training's data
  is measured twice: base + adapter before fusing, and the merged model read back from OUT.
  The two should agree; the numbers go to OUT/lemlab-fuse-check.json for the caller to log.

Never trusts remote code. Exit 0 on success; a traceback and exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import types
from pathlib import Path
from typing import Any, cast

CHECK_FILE = "lemlab-fuse-check.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lemlab.engine.fuse_child")
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--requantize", action="store_true")
    p.add_argument("--check-config", default="")
    return p.parse_args(argv)


def validation_loss(model: Any, tokenizer: Any, check_config: str) -> float | None:
    """Mean validation loss on the training's own valid set (None, with a note in the log, when
    that data is gone: the merge itself does not need it)."""
    try:
        return _validation_loss(model, tokenizer, check_config)
    except Exception as exc:  # noqa: BLE001 - a missing or changed data folder
        print(f"validation check skipped: {type(exc).__name__}: {exc}", flush=True)
        return None


def _validation_loss(model: Any, tokenizer: Any, check_config: str) -> float | None:
    import numpy as np
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.tuner.trainer import evaluate

    from lemlab.core.training.config import load_config_toml

    cfg = load_config_toml(check_config)
    np.random.seed(cfg.seed)
    _, valid, _ = load_dataset(types.SimpleNamespace(**cfg.mlx_lm_args()), tokenizer)
    if len(valid) < cfg.batch_size:
        return None
    loss = evaluate(
        model=model,
        dataset=CacheDataset(valid),
        batch_size=cfg.batch_size,
        num_batches=cfg.val_batches,
        max_seq_length=cfg.max_seq_length,
    )
    return float(loss)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import mlx.core as mx
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import dequantize_model, load, save

    out = Path(args.out)
    print(f"loading {args.model} with adapter {args.adapter}", flush=True)
    # mlx-lm annotates load() with both return shapes; return_config=True gives the three.
    model, tokenizer, config = cast(
        "tuple[Any, Any, dict[str, Any]]",
        load(
            args.model,
            adapter_path=args.adapter,
            return_config=True,
            tokenizer_config={"trust_remote_code": False},
        ),
    )
    quantization = config.get("quantization") or config.get("quantization_config")
    result: dict[str, Any] = {"base_quantization": quantization, "requantized": False}
    if args.check_config:
        result["val_loss_adapter"] = validation_loss(model, tokenizer, args.check_config)
        print(f"validation loss, base + adapter: {result['val_loss_adapter']}", flush=True)
    dequantize = not args.requantize
    fused = [
        (n, m.fuse(dequantize=dequantize)) for n, m in model.named_modules() if hasattr(m, "fuse")
    ]
    if fused:
        model.update_modules(tree_unflatten(fused))
    if quantization and dequantize:
        print("dequantizing: the merged model keeps full-precision weights", flush=True)
        model = dequantize_model(model)
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    result["requantized"] = bool(quantization) and not dequantize
    save(out, args.model, model, tokenizer, config, donate_model=False)
    print(f"saved {out}", flush=True)
    if args.check_config:
        del model, fused
        gc.collect()
        mx.clear_cache()
        merged, tok = cast(
            "tuple[Any, Any]", load(str(out), tokenizer_config={"trust_remote_code": False})
        )
        result["val_loss_fused"] = validation_loss(merged, tok, args.check_config)
        print(f"validation loss, merged model read back: {result['val_loss_fused']}", flush=True)
    (out / CHECK_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
