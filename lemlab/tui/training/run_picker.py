"""The run picker: every training run in the runs folder and the session, one row each (status,
run, model, iterations, best validation loss, where it was found). Enter attaches to the row's
run, o overlays it on the chart as the run to compare with. Dismisses with (action, folder) or
None."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from lemlab.core.training.runs import RunRow

COLUMNS = ("status", "run", "model", "iterations", "best val", "found in")
STATUS_STYLE = {"running": "bold", "waiting": "bold", "error": "red", "interrupted": "red"}


def row_cells(row: RunRow) -> tuple[str, ...]:
    best = f"{row.best_val:.3f} @ {row.best_val_iteration:,}" if row.best_val is not None else "?"
    return (row.status, row.folder.name, row.model or "?", row.iterations, best, row.where)


class RunPickerScreen(ModalScreen["tuple[str, str] | None"]):
    DEFAULT_CSS = """
    RunPickerScreen { align: center middle; }
    #runs-box { width: 96%; height: 80%; border: round $primary; background: $surface; padding: 0 1; }
    #runs-table { height: 1fr; }
    #runs-hint { height: 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="runs.cancel", tooltip="Close, attach nothing"),
        Binding(
            "enter",
            "pick('attach')",
            "Attach",
            id="runs.attach",
            priority=True,
            tooltip="Follow the selected run",
        ),
        Binding(
            "o",
            "pick('overlay')",
            "Overlay",
            id="runs.overlay",
            tooltip="Draw the selected run on the chart beside the followed one",
        ),
    ]

    def __init__(self, rows: list[RunRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-box"):
            yield Static(
                "Training runs  (Enter attaches, o overlays on the chart, Esc closes)",
                classes="table-title",
                markup=False,
            )
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            hint = "" if self.rows else "no runs yet: n starts one (adapters go to the runs folder)"
            yield Static(hint, id="runs-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        for i, row in enumerate(self.rows):
            cells = row_cells(row)
            style = STATUS_STYLE.get(row.status, "")
            table.add_row(Text(cells[0], style=style), *(Text(c) for c in cells[1:]), key=str(i))
        table.focus()

    @property
    def selected(self) -> RunRow | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def action_pick(self, action: str) -> None:
        row = self.selected
        if row is not None:
            self.dismiss((action, str(row.file)))

    def action_cancel(self) -> None:
        self.dismiss(None)
