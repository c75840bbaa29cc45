"""push_screen callbacks: act on what a dialog was dismissed with; nothing when it was cancelled
(None) or left empty. Typed, so mypy checks them against the screen's result type."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def when_given(act: Callable[[T], object]) -> Callable[[T | None], None]:
    """`act(result)` when the screen gave a result (not None, not empty)."""

    def callback(result: T | None) -> None:
        if result:
            act(result)

    return callback


def when_text(act: Callable[[str], object]) -> Callable[[str | None], None]:
    """`act(text)` with the text stripped, when the screen gave text that is not blank."""

    def callback(text: str | None) -> None:
        if text and text.strip():
            act(text.strip())

    return callback
