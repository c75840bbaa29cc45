"""The chat's verbs that are not streaming: slash commands, kernel picking, export.
Shared by slash commands, key bindings and the command palette so all three behave alike."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.command import SimpleCommand

from lemlab.core.atomic import write_text_atomic
from lemlab.core.battery.kernels import list_kernels, load_kernel
from lemlab.core.chat.export import chat_markdown, chat_training_jsonl
from lemlab.core.errors import LemlabError
from lemlab.core.paths import get_paths
from lemlab.tui.panes.base import Verb

if TYPE_CHECKING:
    from textual.app import App

    from lemlab.core.engine_api import GenerationHandle
    from lemlab.tui.state import LabState


class ChatHost(Protocol):
    """What the slash commands use of the pane that holds them (the chat pane): attributes and
    public actions only, so this module needs no import of that pane."""

    handle: GenerationHandle | None  # the reply being streamed

    @property
    def app(self) -> App[Any]: ...

    @property
    def lab(self) -> LabState: ...

    def kernel_switched(self) -> None: ...

    def show_sampler(self) -> None: ...

    async def rebuild(self) -> None: ...

    def action_cancel(self) -> None: ...

    async def action_regenerate(self) -> None: ...

    async def action_variant(self, step: int) -> None: ...

    async def action_edit_last(self) -> None: ...


SLASH_HELP = {
    "/system TEXT": "use TEXT as the system prompt (no text: clear it)",
    "/clear": "start over: drop every message of this session",
    "/undo": "drop the last exchange (your message and its reply)",
    "/save [PATH]": "write the chat as training JSONL (default: the exports folder)",
    "/export md|jsonl": "write the chat as Markdown or training JSONL",
    "/kernel": "pick a kernel file",
    "/help": "show keys and commands",
}


def exports_dir() -> Path:
    return get_paths().data_dir / "exports"


class SlashCommands:
    def __init__(self, pane: ChatHost) -> None:
        self.pane = pane

    @property
    def app(self) -> Any:  # the LemlabApp (its own verbs, e.g. action_help), not imported here
        return self.pane.app

    def _save(self) -> None:
        if error := self.pane.lab.save():
            self.app.notify(error, severity="error")

    async def run(self, line: str) -> None:
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        handlers = {
            "/system": lambda: self.set_system(arg),
            "/clear": self.clear,
            "/undo": self.undo,
            "/save": lambda: self.export("jsonl", arg or None),
            "/export": lambda: self.export(arg or "md"),
            "/kernel": self.pick_kernel,
            "/help": lambda: self.app.action_help(),
            "/quit": lambda: self.app.exit(),
            "/exit": lambda: self.app.exit(),
        }
        handler = handlers.get(cmd.lower())
        if handler is None:
            known = ", ".join(k.split()[0] for k in SLASH_HELP)
            self.app.notify(f"unknown command {cmd} (known: {known})", severity="warning")
            return
        result = handler()
        if inspect.isawaitable(result):  # some handlers are coroutines, some plain calls
            await result

    def set_system(self, text: str, name: str | None = None) -> None:
        before = dict(self.pane.lab.session.kernel)
        self.pane.lab.set_kernel(name, text)
        if self.pane.lab.session.kernel != before:
            self.pane.kernel_switched()
        self._save()
        self.pane.show_sampler()
        self.app.refresh_status()
        shown = name or ("custom system prompt" if text else "no system prompt")
        self.app.notify(f"kernel: {shown}")

    async def clear(self) -> None:
        self.pane.lab.session.messages.clear()
        self._save()
        await self.pane.rebuild()

    async def undo(self) -> None:
        msgs = self.pane.lab.session.messages
        if self.pane.handle is not None or not msgs:
            return
        while msgs and msgs[-1]["role"] != "user":
            msgs.pop()
        if msgs:
            msgs.pop()
        self._save()
        await self.pane.rebuild()

    def export(self, kind: str, target: str | None = None) -> None:
        session = self.pane.lab.session
        if kind not in ("md", "jsonl"):
            self.app.notify(f"export what? 'md' or 'jsonl', not {kind!r}", severity="warning")
            return
        text = chat_markdown(session) if kind == "md" else chat_training_jsonl(session)
        if not text:
            self.app.notify("nothing to export yet: no finished exchange", severity="warning")
            return
        path = Path(target).expanduser() if target else exports_dir() / f"{session.name}.{kind}"
        try:
            write_text_atomic(path, text)
        except OSError as exc:
            self.app.notify(f"could not write {path}: {exc.strerror or exc}", severity="error")
            return
        self.app.notify(f"wrote {path}")

    def pick_kernel(self) -> None:
        def choose(path: Path, name: str) -> None:
            try:
                k = load_kernel(path, name)
            except LemlabError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.set_system(k.text, k.name)

        items = [
            SimpleCommand("No kernel", lambda: self.set_system(""), "plain chat, no system prompt"),
            SimpleCommand("Type a system prompt…", self.ask_system, "free text"),
        ]
        for info in list_kernels():
            help_text = info.error or f"{info.size} bytes · sha256 {info.sha256[:12]} · {info.path}"
            items.append(
                SimpleCommand(
                    f"Kernel: {info.name}", lambda p=info.path, n=info.name: choose(p, n), help_text
                )
            )
        self.app.search_commands(items, placeholder="Pick a kernel…")

    def ask_system(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        def done(text: str | None) -> None:
            if text is not None:
                self.set_system(text.strip())

        self.app.push_screen(
            TextPrompt("System prompt", self.pane.lab.system_text, multiline=True), done
        )

    def copy_last(self) -> None:
        replies = [m for m in self.pane.lab.session.messages if m["role"] == "assistant"]
        if not replies:
            self.app.notify("no reply to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(replies[-1]["content"])
        self.app.notify(f"copied the last reply ({len(replies[-1]['content'])} characters)")

    def verbs(self) -> list[Verb]:
        p = self.pane
        return [
            Verb("Pick kernel", "choose a kernel file as system prompt", self.pick_kernel),
            Verb("Set system prompt", "type a system prompt", self.ask_system),
            Verb(
                "Clear system prompt", "chat without a system prompt", lambda: self.set_system("")
            ),
            Verb(
                "Regenerate reply",
                "generate the last reply again (earlier ones kept as variants)",
                p.action_regenerate,
            ),
            Verb(
                "Previous reply variant",
                "alt+←: an earlier version of the last reply",
                lambda: p.action_variant(-1),
            ),
            Verb(
                "Next reply variant",
                "alt+→: a later version of the last reply",
                lambda: p.action_variant(1),
            ),
            Verb("Copy last reply", "to the clipboard (OSC 52, works over SSH)", self.copy_last),
            Verb("Cancel generation", "stop the reply being streamed", p.action_cancel),
            Verb(
                "Edit last message", "put the last message back into the input", p.action_edit_last
            ),
            Verb("Undo last exchange", "drop the last message and its reply", self.undo),
            Verb("Clear chat", "drop every message of this session", self.clear),
            Verb("Export chat as Markdown", str(exports_dir()), lambda: self.export("md")),
            Verb("Export chat as training JSONL", str(exports_dir()), lambda: self.export("jsonl")),
        ]
