"""Messages the battery run worker posts to the pane (past tense: each reports something done)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class ProbeScored(Message):
    """One probe line is on disk (every condition scored)."""

    line: dict[str, Any]
    done: int  # probe lines in the file so far (kept ones included)
    total: int


@dataclass
class RunProgressed(Message):
    """The live progress line changed (throttled by the worker)."""

    text: str
    fraction: float


@dataclass
class RunFinished(Message):
    """The run ended: completed (summary written) or cancelled (resumable)."""

    path: str
    cancelled: bool
    done: int
    total: int


@dataclass
class RunFailed(Message):
    path: str
    error: str  # one line


@dataclass
class ConditionStreamed(Message):
    """The reply being generated so far (the runner throttles these)."""

    probe_id: str
    condition: str
    text: str
    tokens: int
    tokens_per_s: float


@dataclass
class ConditionScored(Message):
    """One condition of a probe is scored before its probe line is complete: `line` is the
    probe line so far (the conditions scored up to now), so a row can fill cell by cell."""

    line: dict[str, Any]
    condition: str
