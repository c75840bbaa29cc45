"""Battery tab: slot for the probe-battery runner (issue 6 replaces this module's PANE)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from lemlab.tui.panes.base import LabPane


class BatteryPane(LabPane):
    TAB_ID = "battery"
    TITLE = "Battery"

    def compose(self) -> ComposeResult:
        yield Static(
            "Battery runs go here: pick a probe battery and conditions (baseline, kernels, "
            "adapters), run and score them, compare runs. Not built yet; "
            "`lemlab ab` runs batteries from the command line.",
            classes="slot",
            markup=False,
        )


PANE = BatteryPane
