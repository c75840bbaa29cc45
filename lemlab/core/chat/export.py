"""A chat written out from its per-message records (headless): Markdown for reading, one line of
mlx-lm chat JSONL for training. Each reply says what it was generated with, and a kernel switch
shows where it happened, so a chat that changed kernel midway is never credited to one kernel."""

from __future__ import annotations

import json
from typing import Any

from lemlab.core.chat.record import PROVENANCE_KEYS, kernel_marks, provenance_line, variant_label
from lemlab.core.sessions import Session, chat_turns


def chat_markdown(session: Session) -> str:
    lines = [f"# {session.name}", ""]
    used = _kernels_used(session.messages)
    for label, value in (
        ("Model", session.model.get("path")),
        ("Adapter", session.adapter.get("path")),
        ("Kernels used", ", ".join(used) if used else None),
        ("Kernel for the next reply", session.kernel.get("name") or "none"),
    ):
        if value:
            lines.append(f"- **{label}:** {value}")
    marks = kernel_marks(session.messages)
    for i, msg in enumerate(session.messages):
        if i in marks:
            lines += ["", "---", "", f"_{marks[i]}_"]
        lines += ["", f"## {msg['role'].capitalize()}", "", msg["content"]]
        notes = [n for n in (provenance_line(msg), variant_label(msg)) if n]
        if "score" in msg:
            labels = ", ".join(msg.get("labels", [])) or "none"
            notes.append(f"score {msg['score']:.2f}; failure modes: {labels}")
        stats = msg.get("stats") or {}
        if stats.get("prompt_tokens"):
            notes.append(
                f"prompt {stats['prompt_tokens']} tokens ({stats.get('cached_prompt_tokens', 0)} cached)"
            )
        if notes:
            lines += ["", "_" + " · ".join(notes) + "_"]
    return "\n".join(lines).rstrip() + "\n"


def _kernels_used(messages: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for m in messages:
        if m.get("role") == "assistant" and "kernel" in m:
            sha = str(m.get("kernel_sha256", ""))[:12]
            seen[f"{m['kernel']}" + (f" (sha256 {sha})" if sha else "")] = None
    return list(seen)


def chat_training_jsonl(session: Session) -> str:
    """One line: mlx-lm's {"messages": [...]} (the kernel is not training data), plus
    "provenance": one record per assistant message, in order (mlx-lm reads only "messages")."""
    turns = [t for t in chat_turns(session) if t["role"] != "system"]
    while turns and turns[-1]["role"] != "assistant":
        turns.pop()  # a trailing unanswered user turn is no training example
    if not turns:
        return ""
    replies = [m for m in session.messages if m.get("role") == "assistant"]
    records = [{k: m[k] for k in PROVENANCE_KEYS if k in m} for m in replies]
    line: dict[str, Any] = {"messages": turns}
    if any(records):
        line["provenance"] = records
    return json.dumps(line, ensure_ascii=False) + "\n"
