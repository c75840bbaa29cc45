"""One chat message: role line, Markdown body (streamed with incremental Markdown.append), meta
line (stats, score, what the reply was generated with, which variant); kernel-change marks."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Markdown, Static

from lemlab.core.chat.record import provenance_line, variant_label
from lemlab.core.safe_text import visible, visible_line


def stats_text(stats: dict[str, Any]) -> str:
    """The stats line: tokens, tokens/s, time to first token, prompt tokens (and how many came
    from the reused cache), peak memory, finish reason."""
    if not stats:
        return ""
    prompt = (
        f"prompt {stats.get('prompt_tokens', 0)} ({stats.get('cached_prompt_tokens', 0)} cached)"
    )
    return (
        f"{stats.get('generation_tokens', 0)} tok · {stats.get('generation_tps', 0.0):.1f} tok/s · "
        f"ttft {stats.get('time_to_first_token', 0.0) * 1000:.0f} ms · {prompt} · "
        f"peak {stats.get('peak_memory', 0.0):.2f} GB · {stats.get('finish_reason', '?')}"
    )


def score_text(score: float | None, labels: list[str]) -> Text:
    text = Text()
    if score is not None:
        text.append(f"score {score:.2f}", style="bold")
    for label in labels:
        text.append(f"  {label}", style="italic")
    return text


class _SettlesInOnePass:
    """For widgets that never show scrollbars: when such a widget's size changes, the layout pass
    that changed it already placed everything. Textual still runs a second whole-screen layout
    (any widget with children counts as scrollable to it), which doubles the cost of each display
    of a streaming reply; the engine pays for that UI time in GIL time. Overrides a private
    Textual method: tests/test_tui_chat_stream.py checks a streamed reply still lays out like
    the same text mounted whole, and fails first if the signature changes. Kept because
    `bench/chat_bench.py --settle-ab` says so: 7-17% less UI CPU per display than Textual's own
    path (16.6 vs 17.8 ms on a quiet machine, 17.9 vs 21.6 loaded), the same streaming ratio."""

    def _size_updated(
        self, size: Any, virtual_size: Any, container_size: Any, layout: bool = True
    ) -> bool:
        styles = self.styles  # type: ignore[attr-defined]
        scrolls = bool({styles.overflow_x, styles.overflow_y} & {"auto", "scroll"})
        return super()._size_updated(  # type: ignore[misc]
            size, virtual_size, container_size, layout=layout and scrolls
        )


def _settling(cls: type) -> type:
    # Same class name, so the stylesheet's type selectors (MarkdownParagraph, ...) still apply.
    return type(cls.__name__, (_SettlesInOnePass, cls), {})


class ReplyMarkdown(_SettlesInOnePass, Markdown):
    BLOCKS = {name: _settling(block) for name, block in Markdown.BLOCKS.items()}


class KernelMark(Static):
    """A line in the transcript where the kernel changed."""

    def __init__(self, label: str) -> None:
        super().__init__(f"── {visible_line(label)} ──", classes="kernel-mark", markup=False)


class MessageView(_SettlesInOnePass, Vertical):
    """role: user | assistant | system | error. Text is Markdown, never Textual markup.
    Focusable (Tab, click): c copies it (OSC 52, works over SSH)."""

    can_focus = True
    BINDINGS = [
        Binding(
            "c",
            "copy",
            "Copy",
            id="chat.copy_message",
            tooltip="Copy this message to the clipboard (OSC 52)",
        ),
    ]

    def __init__(self, role: str, content: str = "", meta: dict[str, Any] | None = None) -> None:
        super().__init__(classes=f"message -{role}")
        self.role = role
        self.content = content
        self.meta = meta or {}
        self.tokens_shown = 0
        self._cr = ""  # a streamed CR held back: with the next fragment's LF it is a newline
        # Kept, not queried: a stream may start before compose's children finish mounting.
        # The text is shown with its control characters visible (core/safe_text); content
        # keeps the exact text for the session, exports and copying.
        self.body = ReplyMarkdown(visible(content), classes="message-body")

    def compose(self) -> ComposeResult:
        yield Static(self.role, classes="message-role", markup=False)
        yield self.body
        meta = self._meta_text()
        line = Static(meta, classes="message-meta", markup=False)
        line.display = bool(meta.plain)  # user turns have no stats: no empty line under them
        yield line

    def _meta_text(self) -> Text:
        text = Text(stats_text(self.meta.get("stats", {})), style="dim")
        scored = score_text(self.meta.get("score"), self.meta.get("labels", []))
        if scored:
            text.append("   ")
            text.append_text(scored)
        variant = variant_label(self.meta)
        if variant:
            text.append(f"   {variant} (alt+←/→)", style="bold")
        made_with = provenance_line(self.meta)
        if made_with:
            text.append("\n" + visible_line(made_with), style="dim")
        return text

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.content)
        self.app.notify(f"copied the {self.role} message ({len(self.content)} characters)")

    async def show_message(self, msg: dict[str, Any]) -> None:
        """Show another version of this message (a regenerated variant)."""
        self.content, self.meta = msg["content"], msg
        await self.body.update(visible(self.content))
        line = self.query_one(".message-meta", Static)
        line.update(self._meta_text())
        line.display = True

    async def append(self, fragment: str, tokens: int) -> None:
        """Add streamed text. Markdown.append re-parses only from the last block on, as
        Markdown.get_stream does; awaited here instead of queued to get_stream's task because
        the pane already batches writes and waits for each one: the parse then counts in the
        pane's UI-time budget, and the worker cannot run ahead of what is drawn."""
        self.content += fragment
        self.tokens_shown += tokens
        shown = self._cr + fragment
        self._cr = "\r" if shown.endswith("\r") else ""
        if self._cr:
            shown = shown[:-1]
        if shown:
            await self.body.append(visible(shown))

    async def finish(self, meta: dict[str, Any]) -> None:
        if self._cr:  # the reply ended on a lone CR: show it
            self._cr = ""
            await self.body.append(visible("\r"))
        self.meta = meta
        line = self.query_one(".message-meta", Static)
        line.update(self._meta_text())
        line.display = True
