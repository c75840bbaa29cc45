"""Headless chat helpers: message building, system folding, plain prompts, training JSONL."""

from __future__ import annotations

import json

import pytest

from lemlab.core.chat.messages import (
    append_jsonl_text,
    build_messages,
    conversation_jsonl_line,
    fold_system_into_user,
    plain_prompt,
)

SYS = {"role": "system", "content": "Kernel text."}
U1 = {"role": "user", "content": "First question?"}
A1 = {"role": "assistant", "content": "First answer."}
U2 = {"role": "user", "content": "Second question?"}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([SYS, U1], [{"role": "user", "content": "Kernel text.\n\nFirst question?"}]),
        ([U1, A1], [U1, A1]),
        (
            [SYS, U1, A1, U2],
            [{"role": "user", "content": "Kernel text.\n\nFirst question?"}, A1, U2],
        ),
        ([SYS], [{"role": "user", "content": "Kernel text."}]),
        ([], []),
    ],
)
def test_fold_system_into_user(messages, expected) -> None:
    before = json.dumps(messages)
    assert fold_system_into_user(messages) == expected
    assert json.dumps(messages) == before  # inputs untouched


def test_build_messages() -> None:
    turns = [U1, A1]
    assert build_messages(turns, "Second question?", "Kernel text.") == [SYS, U1, A1, U2]
    assert build_messages(turns) == [U1, A1]
    assert build_messages([], "hi", None) == [{"role": "user", "content": "hi"}]
    built = build_messages(turns)
    built[0]["content"] = "changed"
    assert U1["content"] == "First question?"


def test_plain_prompt_joins_texts() -> None:
    assert plain_prompt([SYS, U1]) == "Kernel text.\n\nFirst question?"
    assert plain_prompt([U1, {"role": "assistant", "content": ""}]) == "First question?"


def test_conversation_line_is_mlx_lm_chat_format() -> None:
    line = conversation_jsonl_line([SYS, U1, A1, {"role": "user", "content": "ünïcode ✓"}])
    assert line.endswith("\n") and line.count("\n") == 1
    record = json.loads(line)
    assert list(record) == ["messages"]
    assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant", "user"]
    assert "ünïcode ✓" in line


def test_conversation_without_reply_is_refused() -> None:
    with pytest.raises(ValueError, match="no assistant reply"):
        conversation_jsonl_line([SYS, U1])


@pytest.mark.parametrize(
    ("existing", "expected"),
    [("", "L\n"), ("a\n", "a\nL\n"), ("a", "a\nL\n")],
)
def test_append_jsonl_text(existing: str, expected: str) -> None:
    assert append_jsonl_text(existing, "L\n") == expected
