"""The files a resumable run writes (A/B output and sidecar, self-distill output and progress):
creating a fresh output, appending fsynced lines, reading them back when only the last line may
be cut by a kill, and comparing recorded settings. Headless: no mlx."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError


def start_fresh(out: Path, resume: bool, reuse_empty: bool = False) -> list[str]:
    """Create an empty output (never over an existing one); the notes to show the user.
    `reuse_empty`: an existing empty output is a run that stopped before its first result (the
    caller checked that its sidecar holds nothing either): there is nothing to lose, so it
    starts again in that file instead of wedging the rerun."""
    if reuse_empty and out.is_file() and out.stat().st_size == 0:
        return [f"{out} is empty (an earlier run stopped before its first result): starting anew"]
    if out.exists():
        raise LemlabError(
            f"{out} already exists: add --resume to continue it, or choose another --output"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "x", encoding="utf-8"):
            pass
    except FileExistsError:
        raise LemlabError(f"{out} already exists: add --resume to continue it") from None
    except OSError as exc:
        raise LemlabError(f"cannot write {out}: {exc.strerror or exc}") from None
    return [f"{out} does not exist yet: starting a new run"] if resume else []


def append_line(path: Path, line: str) -> None:
    """One write, flush, fsync: a kill leaves either the whole line or a detectable half.
    A failed write (full disk) is cut back to the lines before it, so the message can say
    truthfully what the file holds."""
    data = line.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            raise LemlabError(_failed_append(path, fd, start, exc)) from None
    finally:
        os.close(fd)


def _failed_append(path: Path, fd: int, start: int, exc: OSError) -> str:
    why = exc.strerror or str(exc)
    try:
        os.ftruncate(fd, start)
        os.fsync(fd)
    except OSError:
        return (
            f"cannot write {path}: {why}; its last line is cut off (--resume drops it and "
            "redoes that item)"
        )
    return (
        f"cannot write {path}: {why}; every line before this one is intact (free some "
        "space, then run the same command with --resume)"
    )


@dataclass
class JsonlRead:
    records: list[tuple[int, dict[str, Any]]]  # (line number, object)
    torn_tail: bool  # the last line was cut (or lacks its newline): rewrite without/with it


def read_jsonl_strict(path: Path) -> JsonlRead:
    """Objects of a file this tool wrote. Only the last line may be broken (a kill); anything
    else is a LemlabError naming file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LemlabError(f"{path}: not UTF-8 text (byte {exc.start}): cannot resume") from None
    except OSError as exc:
        raise LemlabError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = text.split("\n")
    out: list[tuple[int, dict[str, Any]]] = []
    torn = bool(text) and not text.endswith("\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            if n == len(lines) and torn:
                break  # the half-written last line: dropped
            raise LemlabError(f"{path}:{n}: invalid JSON: cannot resume") from None
        except RecursionError:
            raise LemlabError(
                f"{path}:{n}: invalid JSON (nested too deeply): cannot resume"
            ) from None
        if not isinstance(obj, dict):
            raise LemlabError(f"{path}:{n}: not a JSON object: cannot resume")
        out.append((n, obj))
    return JsonlRead(out, torn)


def same_setting(key: str, got: Any, want: Any) -> bool:
    """A recorded setting equals the current one; model and adapter paths compare resolved."""
    if key in ("model", "adapter") and isinstance(got, str) and isinstance(want, str):
        return _norm_path(got) == _norm_path(want)
    return bool(got == want)


def _norm_path(p: str) -> str:
    q = Path(p).expanduser()
    return str(q.resolve()) if q.exists() else p
