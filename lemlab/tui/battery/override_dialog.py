"""A small modal to correct one score: the corrected value and a reason (both required)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from lemlab.core.errors import LemlabError
from lemlab.core.overrides import Override, make_override
from lemlab.core.safe_text import visible_line


class OverrideDialog(ModalScreen[Override | None]):
    DEFAULT_CSS = """
    OverrideDialog { align: center middle; }
    OverrideDialog #override-box {
        width: 70; height: auto; border: round $warning; background: $surface; padding: 0 1;
    }
    OverrideDialog #override-error { color: $error; height: auto; }
    """
    BINDINGS = [
        Binding(
            "escape",
            "dismiss_none",
            "Cancel",
            id="battery.override_cancel",
            tooltip="Close without changing the score",
        ),  # fmt: skip
    ]

    def __init__(self, run: str | Path, probe_id: str, condition: str, original: float,
                 current: float | None = None) -> None:  # fmt: skip
        super().__init__()
        self.run, self.probe_id, self.condition, self.original = run, probe_id, condition, original
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="override-box"):
            yield Static(visible_line(f"Override {self.probe_id} / {self.condition}: scorer gave "
                                      f"{self.original:.2f}"), markup=False)  # fmt: skip
            value = "" if self.current is None else f"{self.current:.2f}"
            yield Input(value, placeholder="corrected score", id="override-value")
            yield Input(placeholder="reason (required)", id="override-reason")
            yield Static("Enter in the reason saves · Esc cancels", markup=False)
            yield Static("", id="override-error", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "override-value":
            self.query_one("#override-reason", Input).focus()
            return
        try:
            ov = make_override(self.run, self.probe_id, self.condition, self.original,
                               self.query_one("#override-value", Input).value,
                               self.query_one("#override-reason", Input).value)  # fmt: skip
        except LemlabError as exc:
            self.query_one("#override-error", Static).update(str(exc))
            return
        self.dismiss(ov)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
