"""Asked on quit while a training run is live: leave it running (it outlives the app; a later
lemlab attaches to it from the run picker), stop it (the trainer saves its adapters first), or
cancel. Dismisses with "leave", "stop" or None."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitWithRunScreen(ModalScreen["str | None"]):
    DEFAULT_CSS = """
    QuitWithRunScreen { align: center middle; }
    #quit-box { width: 76; height: auto; border: round $warning; background: $surface; padding: 0 1; }
    #quit-text { height: auto; margin: 0 0 1 0; }
    #quit-buttons { height: 3; align: right middle; }
    """
    BINDINGS = [
        Binding("escape", "choose('')", "Cancel", id="quit_run.cancel", tooltip="Do not quit"),
        Binding(
            "l",
            "choose('leave')",
            "Leave running",
            id="quit_run.leave",
            tooltip="Quit; the training keeps running",
        ),
        Binding(
            "s",
            "choose('stop')",
            "Stop and quit",
            id="quit_run.stop",
            tooltip="Ask the trainer to save its adapters and stop, then quit",
        ),
    ]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box"):
            yield Static(
                f"{self.what}\n\nLeave it running (l): it keeps training after lemlab exits; "
                "reopen lemlab and pick it with r in the Training tab, or follow it with "
                "`lemlab watch`.\nStop it (s): the trainer saves adapters.safetensors "
                "and keeps every checkpoint.",
                id="quit-text",
                markup=False,
            )
            with Horizontal(id="quit-buttons"):
                yield Button("Cancel", id="quit-cancel")
                yield Button("Stop it and quit", id="quit-stop", variant="warning")
                yield Button("Leave running", id="quit-leave", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#quit-leave", Button).focus()

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose(
            {"quit-leave": "leave", "quit-stop": "stop"}.get(event.button.id or "", "")
        )
