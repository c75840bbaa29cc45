"""The one place tests touch Textual's notification internals: the app's list of notifications
(App._notifications; Textual has no public reader) and their expiry."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App
from textual.notifications import Notification


def notifications(app: App[Any]) -> list[Notification]:
    """Every notification the app holds now, oldest first."""
    return list(app._notifications)


def keep_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    """No toast expires: on a loaded machine more than its 5-10 s can pass between raising one
    and a test reading it."""
    monkeypatch.setattr(Notification, "has_expired", property(lambda self: False))
