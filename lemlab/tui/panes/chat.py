"""Chat tab: streamed Markdown replies, kernel / system prompt, sampler settings, stats, scores,
regenerate (variants kept), edit-and-resend, slash commands, export. Every change is saved to
the session; every reply records what it was generated with (lemlab.core.chat.record)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Input, Static

from lemlab.core.chat.record import add_variant, kernel_label, kernel_marks, show_variant
from lemlab.core.engine_api import Chunk, GenerationHandle, Sampler
from lemlab.core.safe_text import visible_line
from lemlab.tui.chat.actions import SlashCommands
from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.message import KernelMark, MessageView
from lemlab.tui.chat.stream_pacing import DisplayLog, Pacer, chunk_batches, defer_full_gc
from lemlab.tui.panes.base import LabPane, Verb
from lemlab.tui.services import score_reply

READY_HINT = "Enter sends · ctrl+j newline · ctrl+r regenerate · ↑ edit last · /help"


def _parse_sampler(values: dict[str, str], base: Sampler) -> Sampler:
    """Sampler from the four setting fields; ValueError names the bad field."""
    try:
        temperature = float(values["temperature"])
        top_p = float(values["top_p"])
        max_tokens = int(values["max_tokens"])
        seed = int(values["seed"]) if values["seed"].strip() else None
    except ValueError as exc:
        raise ValueError(f"not a number: {exc}") from None
    if temperature < 0 or not 0 < top_p <= 1 or max_tokens < 1:
        raise ValueError("need temperature >= 0, 0 < top_p <= 1, max tokens >= 1")
    return replace(base, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)


def waiting_text(elapsed: float, prefilled: tuple[int, int] | None) -> str:
    """The stats line before the first token: elapsed time, and prefill progress when the
    engine tells it (the MLX engine's handle.prefilled: tokens done, of total)."""
    line = f"waiting for the first token · {elapsed:.1f} s"
    if prefilled and prefilled[0] < prefilled[1]:
        line += f" · prefill {prefilled[0]}/{prefilled[1]} tokens"
    return line + " · Esc cancels"


class ChatPane(LabPane):
    TAB_ID = "chat"
    TITLE = "Chat"
    FOCUS = "#chat-input"
    BINDINGS = [
        Binding(
            "escape", "cancel", "Cancel", id="chat.cancel", tooltip="Stop the reply being generated"
        ),
        Binding(
            "ctrl+r",
            "regenerate",
            "Regenerate",
            id="chat.regenerate",
            tooltip="Generate the last reply again (earlier versions are kept as variants)",
        ),
        Binding(
            "ctrl+y",
            "edit_last",
            "Edit last",
            id="chat.edit_last",
            priority=True,
            tooltip="Put your last message back in the input and drop that exchange",
        ),
        Binding(
            "ctrl+g",
            "pick_kernel",
            "Kernel",
            id="chat.kernel",
            tooltip="Choose a kernel file or type a system prompt",
        ),
        Binding(
            "ctrl+s",
            "export('md')",
            "Export",
            id="chat.export",
            tooltip="Export this chat as Markdown (palette: also training JSONL)",
        ),
        Binding(
            "alt+left",
            "variant(-1)",
            "Prev variant",
            id="chat.variant_prev",
            show=False,
            tooltip="Show the previous version of the last reply",
        ),
        Binding(
            "alt+right",
            "variant(1)",
            "Next variant",
            id="chat.variant_next",
            show=False,
            tooltip="Show the next version of the last reply",
        ),
    ]

    def __init__(self) -> None:
        super().__init__(id="chat-pane")
        self.handle: GenerationHandle | None = None
        self.slash = SlashCommands(self)
        self.display_log = DisplayLog()  # the current reply's displays (the chat bench reads it)
        self.pacer = Pacer(self._engine_cpu)  # its interval is read by the streaming worker
        self._waiting: Timer | None = None  # ticks the elapsed time until the first token
        self._regenerating: dict[str, Any] | None = None  # the reply a regenerate replaces
        self._record: dict[str, Any] = {}  # what the reply in flight is generated with

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-settings"):
            yield Static("kernel: none", id="kernel-label", markup=False)
            for key, label in (
                ("temperature", "temp"),
                ("top_p", "top-p"),
                ("max_tokens", "max"),
                ("seed", "seed"),
            ):
                yield Static(label, classes="setting-label", markup=False)
                yield Input(id=f"set-{key}", classes="setting", compact=True)
        yield VerticalScroll(id="messages")
        yield Static(READY_HINT, id="chat-stats", markup=False)
        yield Composer(
            "Message — Enter sends, shift+enter or ctrl+j for a new line, /help", id="chat-input"
        )

    def on_mount(self) -> None:
        self.show_sampler()
        self.query_one("#messages", VerticalScroll).anchor()

    @property
    def composer(self) -> Composer:
        return self.query_one("#chat-input", Composer)

    # -- settings ---------------------------------------------------------------------------
    def show_sampler(self) -> None:
        s = self.lab.sampler
        values = {
            "temperature": str(s.temperature),
            "top_p": str(s.top_p),
            "max_tokens": str(s.max_tokens),
            "seed": "" if s.seed is None else str(s.seed),
        }
        for key, value in values.items():
            self.query_one(f"#set-{key}", Input).value = value
        kernel = self.lab.session.kernel
        self.query_one("#kernel-label", Static).update(
            visible_line(kernel_label(kernel.get("name") or "none", kernel.get("sha256", "")))
        )

    @on(Input.Changed, ".setting")
    def _setting_changed(self, event: Input.Changed) -> None:
        values = {
            k: self.query_one(f"#set-{k}", Input).value
            for k in ("temperature", "top_p", "max_tokens", "seed")
        }
        try:
            sampler = _parse_sampler(values, self.lab.sampler)
        except ValueError:
            event.input.add_class("-invalid")
            return
        for field in self.query(".setting"):
            field.remove_class("-invalid")
        if sampler != self.lab.sampler:
            self.lab.set_sampler(sampler)
            self.lab.save()

    # -- sending ------------------------------------------------------------------------------
    @on(Composer.Submitted, "#chat-input")
    async def _submitted(self, event: Composer.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        event.composer.value = ""
        if text.startswith("/") and not text.startswith("//") and "\n" not in text:
            await self.slash.run(text)
        else:
            await self.send(text[1:] if text.startswith("//") else text)

    @on(Composer.EmptyUp, "#chat-input")
    async def _empty_up(self) -> None:
        await self.action_edit_last()

    async def send(self, text: str) -> None:
        if not self._ready():
            return
        msg = self.lab.session.add_message("user", text)
        await self.start_reply(MessageView("user", msg["content"]))
        self._saved()  # after the request is queued: the fsync need not delay the first token

    def _ready(self) -> bool:
        if self.handle is not None:
            self.app.notify("A reply is still streaming (Esc cancels it).", severity="warning")
            return False
        if self.lab.loaded is None:
            what = (
                f"Still loading {self.lab.loading}."
                if self.lab.loading
                else "Load a model first (Models tab)."
            )
            self.app.notify(what, severity="warning")
            return False
        return True

    async def start_reply(self, *before: MessageView) -> None:
        """Queue the request, then mount `before` (the user's message) and the reply's view in
        one go: the engine prefills while the UI lays out."""
        box = self.query_one("#messages")
        restore_gc = defer_full_gc()  # before the request: the engine may start at once
        sent = time.monotonic()
        self._record = self.lab.provenance()  # taken now: a kernel switch mid-reply can't change it
        try:
            # reuse_prefix: the engine keeps the conversation's KV cache between turns, so a
            # turn prefills only what is new (the CLI REPL asks the same).
            handle = self.lab.engine.generate(self.lab.turns(), self.lab.sampler, reuse_prefix=True)
        except Exception as exc:  # noqa: BLE001 - engine refusal: one line, chat stays usable
            restore_gc()
            await box.mount_all(before)
            self._restore_regenerated()
            self.app.notify(f"generation failed: {exc}", severity="error")
            return
        self.handle = handle
        self.display_log = DisplayLog(sent=sent)
        self.pacer.start()
        view = MessageView("assistant")
        await box.mount_all([*before, view])
        # Only the stats line changes style: a class on the whole pane restyles every message.
        self.query_one("#chat-stats", Static).add_class("-generating")
        self._tick_waiting()
        self._waiting = self.set_interval(0.25, self._tick_waiting)
        self._stream(handle, view, restore_gc)

    def _tick_waiting(self) -> None:
        elapsed = time.monotonic() - self.display_log.sent
        prefilled = self.handle.prefilled if self.handle is not None else None
        self.query_one("#chat-stats", Static).update(waiting_text(elapsed, prefilled), layout=False)

    def _stop_waiting(self) -> None:
        if self._waiting is not None:
            self._waiting.stop()
            self._waiting = None

    @work(thread=True, exclusive=True, group="generate")
    def _stream(
        self, handle: GenerationHandle, view: MessageView, restore_gc: Callable[[], None]
    ) -> None:
        # Reads the engine's chunks on a plain thread (no MLX here) and hands the UI one batch
        # per flush interval, so the display keeps pace with the engine's raw token rate.
        shown = 0  # engine tokens already handed to the UI (a token may decode to no text yet)
        final: Chunk | None = None
        try:
            for batch in chunk_batches(handle, lambda: self.pacer.interval):
                last = batch[-1]
                final = last if last.done else None
                text = "".join(c.text for c in batch)
                tokens = max(last.stats.generation_tokens, shown) - shown
                if text or tokens:
                    # Textual types the callback `R | Awaitable[R]`: mypy infers Never for R when
                    # it is a coroutine function (also below).
                    self.app.call_from_thread(
                        self._show,  # type: ignore[arg-type]
                        view,
                        text,
                        tokens,
                        last.stats.generation_tps,
                    )
                    shown += tokens
        finally:
            restore_gc()  # after the last display: the deferred full collection may run now
        text, _ = handle.result()
        prompt = next((t["content"] for t in reversed(self.lab.turns()) if t["role"] == "user"), "")
        score, labels = score_reply(text, prompt) if text else (None, [])
        self.app.call_from_thread(self._finished, view, text, final, score, labels)  # type: ignore[arg-type]

    async def _show(self, view: MessageView, text: str, tokens: int, tps: float) -> None:
        if self._waiting is not None:
            self._stop_waiting()
        # The stats line first: both changes then reach the screen in one refresh, not two.
        self.query_one("#chat-stats", Static).update(
            f"streaming… {view.tokens_shown + tokens} tokens · {tps:.1f} tok/s · Esc cancels",
            layout=False,
        )
        await view.append(text, tokens)
        self.display_log.shown(tokens)
        self.pacer.displayed()

    def _engine_cpu(self) -> float | None:
        return self.lab.engine.engine_cpu_seconds()

    @property
    def displayed_tokens(self) -> int:
        return self.display_log.tokens

    async def _finished(
        self,
        view: MessageView,
        text: str,
        final: Chunk | None,
        score: float | None,
        labels: list[str],
    ) -> None:
        self.handle = None
        self._stop_waiting()
        self.query_one("#chat-stats", Static).remove_class("-generating")
        self.query_one("#chat-stats", Static).update(READY_HINT)
        stats: dict[str, Any] = dict(vars(final.stats)) if final else {}
        stats = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()}
        if final is not None and final.error:
            await view.remove()
            self._restore_regenerated()
            self.app.notify(f"generation failed: {final.error.splitlines()[0]}", severity="error")
            return
        msg = self.lab.session.add_message(
            "assistant", text, stats=stats, score=score, labels=labels or None, **self._record
        )
        if self._regenerating is not None:
            msg = self._replace_last(add_variant(self._regenerating, msg))
            self._regenerating = None
        await view.finish(msg)
        self._saved()

    def _replace_last(self, msg: dict[str, Any]) -> dict[str, Any]:
        self.lab.session.messages[-1] = msg
        return msg

    def _restore_regenerated(self) -> None:
        # A regenerate that failed: the reply it was to replace comes back.
        if self._regenerating is not None:
            self.lab.session.messages.append(self._regenerating)
            self._regenerating = None
            self.run_worker(self.rebuild(), exclusive=True, group="rebuild")

    def _saved(self) -> None:
        if error := self.lab.save():
            self.app.notify(error, severity="error")

    # -- actions ------------------------------------------------------------------------------
    def action_cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    async def action_regenerate(self) -> None:
        msgs = self.lab.session.messages
        if self.handle is not None or not msgs or not self._ready():
            return
        if msgs[-1]["role"] == "assistant":
            # Kept, not dropped: the new reply becomes another variant of this message.
            self._regenerating = msgs.pop()
            views = self.query(MessageView)
            if views:
                await views.last().remove()
        await self.start_reply()

    async def action_variant(self, step: int) -> None:
        msgs = self.lab.session.messages
        if self.handle is not None or not msgs or len(msgs[-1].get("variants") or []) < 2:
            return
        current = int(msgs[-1].get("variant", 0))
        msgs[-1] = show_variant(msgs[-1], current + step)
        self._saved()
        views = self.query(MessageView)
        if views:
            await views.last().show_message(msgs[-1])

    async def action_edit_last(self) -> None:
        msgs = self.lab.session.messages
        idx = next((i for i in range(len(msgs) - 1, -1, -1) if msgs[i]["role"] == "user"), None)
        if idx is None or self.handle is not None:
            return
        text = msgs[idx]["content"]
        del msgs[idx:]
        self._saved()
        await self.rebuild()
        box = self.composer
        box.value = text
        box.focus()

    def action_pick_kernel(self) -> None:
        self.slash.pick_kernel()

    def action_export(self, kind: str) -> None:
        self.slash.export(kind)

    def kernel_switched(self) -> None:
        """Mark the switch at the end of the transcript at once (a rebuild puts the same mark
        before the first exchange made with the new kernel)."""
        msgs = self.lab.session.messages
        if msgs:
            kernel = self.lab.session.kernel
            mark = KernelMark(kernel_label(kernel.get("name") or "none", kernel.get("sha256", "")))
            self.query_one("#messages").mount(mark)

    async def rebuild(self) -> None:
        box = self.query_one("#messages", VerticalScroll)
        await box.remove_children()
        msgs = self.lab.session.messages
        marks = kernel_marks(msgs)
        views: list[Static | MessageView] = []
        for i, m in enumerate(msgs):
            if i in marks:
                views.append(KernelMark(marks[i]))
            views.append(MessageView(m["role"], m["content"], m))
        await box.mount_all(views)
        self.show_sampler()

    def session_opened(self) -> None:
        self.run_worker(self.rebuild(), exclusive=True, group="rebuild")

    def model_changed(self) -> None:
        self.show_sampler()

    def palette_verbs(self) -> list[Verb]:
        return self.slash.verbs()


PANE = ChatPane
