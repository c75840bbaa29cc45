"""Check an mlx-lm data folder before a training starts, so bad data fails in a second with the
file and line, not minutes into a run with a traceback.

Accepted line shapes (mlx-lm picks one per file from its first line, so all lines must match):
chat `{"messages": [{"role", "content"}, ...]}`, completions `{"prompt", "completion"}`,
text `{"text"}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.errors import DataError

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_REPORTED = 3


@dataclass(frozen=True)
class DataSummary:
    train_examples: int
    valid_examples: int
    data_format: str  # chat, completions or text


def line_format(obj: Any) -> tuple[str | None, str | None]:
    """(format, None) for a good line, (None, reason) for a bad one."""
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    if "prompt" in obj and "completion" in obj:
        ok = isinstance(obj["prompt"], str) and isinstance(obj["completion"], str)
        return ("completions", None) if ok else (None, "prompt and completion must be strings")
    if "messages" in obj:
        reason = _chat_problem(obj["messages"])
        return (None, reason) if reason else ("chat", None)
    if "text" in obj:
        return ("text", None) if isinstance(obj["text"], str) else (None, "text must be a string")
    return None, 'no "messages", "text" or "prompt"/"completion" key'


def _chat_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"message {i} is not an object"
        if m.get("role") not in ROLES:
            return f"message {i} has role {m.get('role')!r}"
        if not isinstance(m.get("content"), str):
            return f"message {i} content is not a string"
    return None


def check_jsonl(path: Path) -> tuple[int, str | None, list[str]]:
    """(examples, format, problems as "file:line: reason") for one JSONL file."""
    count, fmt = 0, None
    problems: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, raw in enumerate(fh, 1):
            if len(problems) >= MAX_REPORTED:
                break
            if not raw.strip():
                problems.append(f"{path.name}:{n}: blank line (mlx-lm cannot read it)")
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name}:{n}: not valid JSON ({exc.msg})")
                continue
            except ValueError as exc:  # e.g. an integer longer than int() reads (4300 digits)
                problems.append(f"{path.name}:{n}: not valid JSON ({exc})")
                continue
            except RecursionError:
                problems.append(f"{path.name}:{n}: not valid JSON (nested too deeply)")
                continue
            this, reason = line_format(obj)
            if reason is None and fmt is not None and this != fmt:
                reason = f"{this} line in a {fmt} file"
            if reason:
                problems.append(f"{path.name}:{n}: {reason}")
                continue
            fmt = fmt or this
            count += 1
    return count, fmt, problems


def validate_data_folder(folder: str | Path, batch_size: int) -> DataSummary:
    """Raise DataError (one line, first bad lines as file:line) or return the counts."""
    d = Path(folder)
    if not d.is_dir():
        raise DataError(f"data folder not found: {d}")
    counts: dict[str, int] = {}
    fmt = None
    for name in ("train", "valid"):
        path = d / f"{name}.jsonl"
        if not path.is_file():
            raise DataError(f"{d} has no {name}.jsonl (mlx-lm needs train.jsonl and valid.jsonl)")
        count, this, problems = check_jsonl(path)
        if problems:
            raise DataError(f"bad training data in {d}: " + "; ".join(problems))
        if count < batch_size:
            raise DataError(f"{path} has {count} examples, fewer than the batch size {batch_size}")
        if fmt is not None and this != fmt:
            raise DataError(f"{d}: train.jsonl is {fmt} but valid.jsonl is {this}")
        fmt, counts[name] = this, count
    return DataSummary(counts["train"], counts["valid"], fmt or "chat")
