"""A small modal to correct one score: the corrected value and a reason (both required).

Tab, shift+Tab and Enter are priority bindings that move focus with Screen.set_focus at once:
the app forwards each key to the widget focused when it reads the key, so a focus change made
later (an Input's own Enter, Widget.focus's call_later) lets keys typed quickly after it land
in the old field ("7", Tab, a reason all went into the value). Keys that arrive before the
dialog has focused its first field go to that field too."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from lemlab.core.ab.overrides import Override, make_override
from lemlab.core.errors import LemlabError
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
        ),
        Binding(
            "tab",
            "field(1)",
            "Next field",
            id="battery.override_next",
            show=False,
            priority=True,
            tooltip="Move to the next field",
        ),
        Binding(
            "shift+tab",
            "field(-1)",
            "Previous field",
            id="battery.override_prev",
            show=False,
            priority=True,
            tooltip="Move to the previous field",
        ),
        Binding(
            "enter",
            "enter",
            "Next / save",
            id="battery.override_save",
            show=False,
            priority=True,
            tooltip="From the value: to the reason; from the reason: save",
        ),
    ]

    def __init__(
        self,
        run: str | Path,
        probe_id: str,
        condition: str,
        original: float,
        current: float | None = None,
    ) -> None:
        super().__init__()
        self.run, self.probe_id, self.condition, self.original = run, probe_id, condition, original
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="override-box"):
            yield Static(
                visible_line(
                    f"Override {self.probe_id} / {self.condition}: scorer gave {self.original:.2f}"
                ),
                markup=False,
            )
            value = "" if self.current is None else f"{self.current:.2f}"
            yield Input(value, placeholder="corrected score", id="override-value")
            yield Input(placeholder="reason (required)", id="override-reason")
            yield Static("Enter in the reason saves · Esc cancels", markup=False)
            yield Static("", id="override-error", markup=False)

    def _fields(self) -> list[Input]:
        return [self.query_one("#override-value", Input), self.query_one("#override-reason", Input)]

    def action_field(self, by: int) -> None:
        fields = self._fields()
        at = fields.index(self.focused) if self.focused in fields else (-1 if by > 0 else 0)
        self.set_focus(fields[(at + by) % len(fields)])  # now, not after a call_later

    def action_enter(self) -> None:
        value, reason = self._fields()
        if self.focused is value or self.focused is None:
            self.action_field(1)
        else:
            # Keys typed before this Enter may still wait in the fields' queues: save after
            # each field has handled them.
            value.call_later(reason.call_later, self.save)

    def on_key(self, event: events.Key) -> None:
        # A printable key that reached the screen itself (an Input keeps those it types): it
        # was read before the dialog had focused a field. It belongs in the focused field.
        if event.character and event.character.isprintable():
            fields = self._fields()
            field = self.focused if self.focused in fields else fields[0]
            self.set_focus(field)
            field.insert_text_at_cursor(event.character)
            event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_enter()  # Enter is a priority binding; this serves Input.action_submit

    def save(self) -> None:
        try:
            ov = make_override(
                self.run,
                self.probe_id,
                self.condition,
                self.original,
                self.query_one("#override-value", Input).value,
                self.query_one("#override-reason", Input).value,
            )
        except LemlabError as exc:
            self.query_one("#override-error", Static).update(str(exc))
            return
        self.dismiss(ov)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
