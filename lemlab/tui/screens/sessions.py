"""Sessions list: open one (Enter), start a new one (n). Damaged files are listed, not loaded."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from lemlab.core.errors import LemlabError
from lemlab.core.safe_text import visible_line
from lemlab.core.sessions import list_sessions, validate_name


class SessionsScreen(ModalScreen[str | None]):
    """Dismisses with the chosen (or new) session name, or None."""

    BINDINGS = [
        Binding(
            "escape", "close", "Close", id="sessions.close", tooltip="Keep the current session"
        ),
        Binding("n", "new", "New", id="sessions.new", tooltip="Start a new session"),
    ]

    def __init__(self, sessions_dir: Path) -> None:
        super().__init__()
        self.sessions_dir = sessions_dir

    def compose(self) -> ComposeResult:
        found, damaged = list_sessions(self.sessions_dir)
        with Vertical(id="sessions-box"):
            yield Static(
                f"Sessions in {self.sessions_dir}  (Enter opens, n new, Esc closes)",
                classes="table-title",
                markup=False,
            )
            table: DataTable[str | Text] = DataTable(id="sessions-table", cursor_type="row")
            table.add_columns("name", "updated", "model", "messages", "runs")
            for s in found:
                cells = (
                    s.name,
                    s.updated[:19].replace("T", " "),
                    Path(s.model).name,
                    str(s.messages),
                    str(s.runs),
                )  # from session files: never markup
                table.add_row(*(Text(visible_line(c)) for c in cells), key=s.name)
            yield table
            for line in damaged:
                yield Static(
                    visible_line(f"damaged, left untouched: {line}"),
                    classes="damaged",
                    markup=False,
                )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_new(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        def named(name: str | None) -> None:
            if not name:
                return
            try:
                self.dismiss(validate_name(name.strip()))
            except LemlabError as exc:
                self.app.notify(str(exc), severity="error")

        self.app.push_screen(TextPrompt("New session name"), named)

    def action_close(self) -> None:
        self.dismiss(None)
