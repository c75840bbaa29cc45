"""Fuse a LoRA adapter into its base model's weights (`mlx_lm fuse`), as a child process.

A child keeps the caller free of mlx (the CLI parent never imports it) and frees the model's
memory when done. Output is written to OUT.partial and renamed to OUT only when complete, with a
marker file, so an interrupted fuse is never mistaken for a finished one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

FUSED_MARKER = "lemlab-fused.json"


class FuseError(RuntimeError):
    pass


def fuse_command(model: str | Path, adapter: str | Path, out: str | Path) -> list[str]:
    """Argument list (no shell). mlx_lm fuse never trusts remote code unless asked to."""
    return [sys.executable, "-m", "mlx_lm", "fuse", "--model", str(model),
            "--adapter-path", str(adapter), "--save-path", str(out)]


def is_fused(out: str | Path) -> bool:
    return (Path(out) / FUSED_MARKER).is_file()


def fuse_adapter(model: str | Path, adapter: str | Path, out: str | Path, log: str | Path) -> Path:
    """Write the merged model to OUT; raise FuseError with a one-line reason on failure."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with open(log, "ab") as fh:
        code = subprocess.run(fuse_command(model, adapter, partial), stdin=subprocess.DEVNULL,
                              stdout=fh, stderr=subprocess.STDOUT).returncode
    if code != 0 or not (partial / "config.json").is_file():
        raise FuseError(f"fuse of {adapter} into {model} failed (exit {code}; log: {log})")
    marker = {"model": str(model), "adapter": str(adapter), "ts": datetime.now(UTC).isoformat()}
    (partial / FUSED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return out
