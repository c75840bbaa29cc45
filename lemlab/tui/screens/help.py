"""F1 / ?: every key binding (as remapped by the keymap), its id for the config, and the slash
commands. Built from the live BINDINGS, so it never drifts from what the keys do."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from lemlab.tui.chat.actions import SLASH_HELP


def binding_rows(
    scopes: Iterable[tuple[str, Iterable[object]]], keymap: dict[str, str]
) -> list[tuple[str, str, str, str]]:
    """(where, keys, id, what) for every Binding with an id, keys as the keymap sets them."""
    rows = []
    for where, bindings in scopes:
        for b in bindings:
            if not isinstance(b, Binding) or not b.id:
                continue
            what = b.tooltip or b.description
            rows.append((where, keymap.get(b.id, b.key), b.id, what))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,f1,q", "dismiss", "Close", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, rows: list[tuple[str, str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(
                "Keys (remap any id under [keymap] in config.toml)",
                classes="table-title",
                markup=False,
            )
            table: DataTable[str] = DataTable(id="help-keys", cursor_type="row", zebra_stripes=True)
            table.add_columns("where", "keys", "id", "what it does")
            for row in self.rows:
                table.add_row(*row)
            yield table
            slash = "  ".join(f"{k}: {v}" for k, v in SLASH_HELP.items())
            yield Static(f"Chat commands — {slash}", id="help-slash", markup=False)
            yield Static(
                "ctrl+p opens the command palette: every verb is there. Esc closes this.",
                markup=False,
            )

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
