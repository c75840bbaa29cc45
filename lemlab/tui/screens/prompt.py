"""A small modal that asks for one text (a system prompt, a session name)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static, TextArea


class TextPrompt(ModalScreen[str | None]):
    BINDINGS = [
        Binding(
            "escape", "dismiss_none", "Cancel", id="prompt.cancel", tooltip="Close, change nothing"
        ),
        Binding("ctrl+s", "submit", "Done", id="prompt.submit", tooltip="Use this text"),
    ]

    def __init__(self, title: str, value: str = "", *, multiline: bool = False) -> None:
        super().__init__()
        self.title_text, self.value, self.multiline = title, value, multiline

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            hint = (
                "ctrl+s to use it, Esc to cancel"
                if self.multiline
                else "Enter to use it, Esc to cancel"
            )
            yield Static(f"{self.title_text}  ({hint})", markup=False)
            if self.multiline:
                yield TextArea(self.value, id="prompt-text")
            else:
                yield Input(self.value, id="prompt-text")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_submit(self) -> None:
        widget = self.query_one("#prompt-text")
        self.dismiss(widget.text if isinstance(widget, TextArea) else widget.value)  # type: ignore[attr-defined]

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
