"""The header line: active model, adapter, kernel, session, and a loud label for demo models."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from lemlab.core.models.demo import is_bundled_demo
from lemlab.core.safe_text import visible_line

DEMO_LABEL = "DEMO: random weights, output is noise"


def _short(path: str | None) -> str:
    return Path(path).name if path else "none"


def _model_label(path: str | None) -> str:
    # The bundled real model is labelled by its name and as the demo (it is not noise).
    return f"{_short(path)} (demo)" if path and is_bundled_demo(path) else _short(path)


class StatusBar(Horizontal):
    """Plain text only (markup=False): paths and names may hold '[' and other markup."""

    def compose(self) -> ComposeResult:
        yield Static(DEMO_LABEL, id="demo-label", markup=False)
        yield Static("", id="status-text", markup=False)

    def show(
        self,
        *,
        model: str | None,
        adapter: str | None,
        kernel: str | None,
        session: str,
        is_demo: bool,
        busy: str = "",
    ) -> None:
        text = Text()
        for label, value in (
            ("model", _model_label(model) if not busy else busy),
            ("adapter", _short(adapter)),
            ("kernel", kernel or "none"),
            ("session", session),
        ):
            text.append(f" {label} ", style="dim")
            text.append(visible_line(value), style="bold")  # names from files and servers
            text.append("  ")
        self.query_one("#status-text", Static).update(text)
        self.query_one("#demo-label", Static).display = is_demo
