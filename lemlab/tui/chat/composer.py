"""The chat's message box: a multi-line TextArea where Enter sends and shift+enter / ctrl+j /
alt+enter insert a newline. A paste keeps its newlines (researchers paste multi-paragraph probes;
a single-line Input kept only the first line)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = ("shift+enter", "ctrl+j", "alt+enter")


class Composer(TextArea):
    DEFAULT_CSS = """
    Composer { height: auto; min-height: 3; max-height: 8; }
    """

    @dataclass
    class Submitted(Message):
        """Enter was pressed: the whole text, newlines included."""

        composer: Composer
        value: str

        @property
        def control(self) -> Composer:
            return self.composer

    @dataclass
    class EmptyUp(Message):
        """Up in an empty box (the chat puts the last message back in)."""

        composer: Composer

        @property
        def control(self) -> Composer:
            return self.composer

    def __init__(self, placeholder: str = "", *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder=placeholder,
            highlight_cursor_line=False,
        )

    @property
    def value(self) -> str:
        return self.text

    @value.setter
    def value(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        if event.key == "up" and not self.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.EmptyUp(self))
            return
        await super()._on_key(event)
