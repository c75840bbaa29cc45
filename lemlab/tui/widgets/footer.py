"""The footer with the help key first: at 80 columns Textual's footer cuts its right end, and
F1 (every key and command) must stay reachable on the smallest terminal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer

FIRST_KEYS = ("f1",)


class LabFooter(Footer):
    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        first = [w for w in widgets if getattr(w, "key", None) in FIRST_KEYS]
        yield from first
        yield from (w for w in widgets if w not in first)
