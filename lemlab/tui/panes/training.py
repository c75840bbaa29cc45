"""Training tab: slot for the LoRA training monitor (issue 7/8 replaces this module's PANE)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from lemlab.tui.panes.base import LabPane


class TrainingPane(LabPane):
    TAB_ID = "training"
    TITLE = "Training"

    def compose(self) -> ComposeResult:
        yield Static(
            "Training runs go here: start a LoRA run, follow loss curves, learning rate, "
            "tokens/s and checkpoints. Not built yet; `lemlab train` and `lemlab watch` work "
            "from the command line.",
            classes="slot",
            markup=False,
        )


PANE = TrainingPane
