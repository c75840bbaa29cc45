"""Fuse a LoRA adapter into its base model's weights, as a child process (engine.fuse_child).

A child keeps the caller free of mlx (the CLI parent never imports it) and frees the model's
memory when done. Output is written to OUT.partial and renamed to OUT only when complete, with a
marker file, so an interrupted fuse is never mistaken for a finished one.

A quantized base is dequantized by default: re-quantizing the merged weights rounds away a
small learning rate's update (issue 19: 180x the update on a 4-bit 135M model). `requantize`
asks for the old, lossy behaviour. The marker records which one happened and, when the
adapter folder holds its training config, the validation loss before and after the merge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lemlab.core.models.paths import FUSED_MARKER

TRAIN_CONFIG = "lemlab-train.toml"  # written by `lemlab train` into the adapter folder


class FuseError(RuntimeError):
    pass


@dataclass(frozen=True)
class FuseResult:
    out: Path
    base_quantization: dict[str, Any] | None  # the base model's quantization, None if none
    requantized: bool
    val_loss_adapter: float | None = None  # validation loss of base + adapter
    val_loss_fused: float | None = None  # the same on the merged model read back

    @property
    def dequantized(self) -> bool:
        return bool(self.base_quantization) and not self.requantized

    def summary(self) -> str:
        """One line for logs: what the merged model is and whether it kept the stage's loss."""
        q = self.base_quantization
        bits = f"{q.get('bits')}-bit" if isinstance(q, dict) else "quantized"
        kind = (
            "full precision (base was unquantized)"
            if not q
            else f"re-quantized to {bits} (lossy)"
            if self.requantized
            else f"dequantized from {bits} to full precision"
        )
        line = f"merged model {kind}"
        if self.val_loss_adapter is not None and self.val_loss_fused is not None:
            line += (
                f"; validation loss {self.val_loss_fused:.4f} merged vs "
                f"{self.val_loss_adapter:.4f} base + adapter"
            )
        return line

    def loss_drift(self) -> float | None:
        if self.val_loss_adapter is None or self.val_loss_fused is None:
            return None
        return abs(self.val_loss_fused - self.val_loss_adapter)


def fuse_command(
    model: str | Path,
    adapter: str | Path,
    out: str | Path,
    *,
    requantize: bool = False,
    check_config: str | Path | None = None,
) -> list[str]:
    """Argument list (no shell)."""
    cmd = [
        sys.executable,
        "-m",
        "lemlab.engine.fuse_child",
        "--model",
        str(model),
        "--adapter",
        str(adapter),
        "--out",
        str(out),
    ]
    if requantize:
        cmd.append("--requantize")
    if check_config:
        cmd += ["--check-config", str(check_config)]
    return cmd


def read_marker(out: str | Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(out) / FUSED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def fuse_adapter(
    model: str | Path,
    adapter: str | Path,
    out: str | Path,
    log: str | Path,
    *,
    requantize: bool = False,
) -> FuseResult:
    """Write the merged model to OUT; raise FuseError with a one-line reason on failure."""
    from lemlab.engine.fuse_child import CHECK_FILE

    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    config = Path(adapter) / TRAIN_CONFIG
    cmd = fuse_command(
        model,
        adapter,
        partial,
        requantize=requantize,
        check_config=config if config.is_file() else None,
    )
    with open(log, "ab") as fh:
        code = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT
        ).returncode
    check = partial / CHECK_FILE
    if code != 0 or not (partial / "config.json").is_file() or not check.is_file():
        raise FuseError(f"fuse of {adapter} into {model} failed (exit {code}; log: {log})")
    found = json.loads(check.read_text(encoding="utf-8"))
    check.unlink()
    result = FuseResult(
        out,
        found.get("base_quantization"),
        bool(found.get("requantized")),
        found.get("val_loss_adapter"),
        found.get("val_loss_fused"),
    )
    marker = {
        "model": str(model),
        "adapter": str(adapter),
        "ts": datetime.now(UTC).isoformat(),
        "base_quantization": result.base_quantization,
        "requantized": result.requantized,
        "dequantized": result.dequantized,
        "val_loss_adapter": result.val_loss_adapter,
        "val_loss_fused": result.val_loss_fused,
    }
    (partial / FUSED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(result.summary() + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return result
