"""One chat message: role line, Markdown body (streamed with incremental Markdown.append), meta line."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static


def stats_text(stats: dict[str, Any]) -> str:
    """The stats line: tokens, tokens/s, time to first token, peak memory, finish reason."""
    if not stats:
        return ""
    return (
        f"{stats.get('generation_tokens', 0)} tok · {stats.get('generation_tps', 0.0):.1f} tok/s · "
        f"ttft {stats.get('time_to_first_token', 0.0) * 1000:.0f} ms · "
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
    the same text mounted whole."""

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


class MessageView(_SettlesInOnePass, Vertical):
    """role: user | assistant | system | error. Text is Markdown, never Textual markup."""

    def __init__(self, role: str, content: str = "", meta: dict[str, Any] | None = None) -> None:
        super().__init__(classes=f"message -{role}")
        self.role = role
        self.content = content
        self.meta = meta or {}
        self.tokens_shown = 0
        # Kept, not queried: a stream may start before compose's children finish mounting.
        self.body = ReplyMarkdown(content, classes="message-body")

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
        return text

    async def append(self, fragment: str, tokens: int) -> None:
        """Add streamed text. Markdown.append re-parses only from the last block on, as
        Markdown.get_stream does; awaited here instead of queued to get_stream's task because
        the pane already batches writes and waits for each one: the parse then counts in the
        pane's UI-time budget, and the worker cannot run ahead of what is drawn."""
        self.content += fragment
        self.tokens_shown += tokens
        if fragment:
            await self.body.append(fragment)

    async def finish(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        line = self.query_one(".message-meta", Static)
        line.update(self._meta_text())
        line.display = True
