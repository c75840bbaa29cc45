"""Chat messages as plain data: building them, folding a system message into the user turn for
templates that reject the system role, plain prompts for models without a chat template, and
export of a conversation as mlx-lm chat training JSONL. Headless: no mlx here."""

from __future__ import annotations

import json
from collections.abc import Sequence

from lemlab.core.engine_api import Message

ROLES = ("system", "user", "assistant")


def build_messages(
    turns: Sequence[Message], user_text: str | None = None, system: str | None = None
) -> list[Message]:
    """[system?] + earlier turns + [user_text?] as a fresh list (inputs are not modified)."""
    messages: list[Message] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.extend({"role": m["role"], "content": m["content"]} for m in turns)
    if user_text is not None:
        messages.append({"role": "user", "content": user_text})
    return messages


def fold_system_into_user(messages: Sequence[Message]) -> list[Message]:
    """For templates without a system role: the system text, a blank line, then the first user
    message's text form that user message (spec/formats.md). Other messages are unchanged."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if not system:
        return rest
    prefix = "\n\n".join(system)
    for m in rest:
        if m["role"] == "user":
            m["content"] = f"{prefix}\n\n{m['content']}"
            return rest
    # No user turn at all: the system text becomes the user turn.
    return [{"role": "user", "content": prefix}, *rest]


def plain_prompt(messages: Sequence[Message]) -> str:
    """Prompt for a model without a chat template: the texts joined by blank lines. The caller
    warns that no template was applied (the model sees no turn markers)."""
    return "\n\n".join(m["content"] for m in messages if m["content"])


def conversation_record(messages: Sequence[Message]) -> dict[str, list[Message]]:
    """One mlx-lm chat training example: the whole conversation (optional leading system
    message, then user/assistant turns). Raises ValueError when there is nothing to train on."""
    kept = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] in ROLES]
    if not any(m["role"] == "assistant" for m in kept):
        raise ValueError("the conversation has no assistant reply yet")
    return {"messages": kept}


def conversation_jsonl_line(messages: Sequence[Message]) -> str:
    """The training example as one JSON line (with its newline), UTF-8 kept readable."""
    return json.dumps(conversation_record(messages), ensure_ascii=False) + "\n"


def append_jsonl_text(existing: str, line: str) -> str:
    """Existing file text plus one line, adding the newline a hand-edited file may lack."""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    return existing + line
