"""Open a model or adapter folder by path: a path input that completes folder names (→ or End
accepts the grey suggestion), a folder tree to browse, and the recently opened ones. Returns
the chosen folder (the app tells a model from an adapter) or a recent (model, adapter) pair."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Input, OptionList, Static
from textual.widgets.option_list import Option

from lemlab.core.models.recent import Recent
from lemlab.core.safe_text import visible_line


class FolderSuggester(Suggester):
    """Completes the last path component to the first matching sub-folder (hidden ones only
    when the typed part starts with a dot)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return complete_folder(value)


def complete_folder(value: str) -> str | None:
    if not value:
        return None
    typed = Path(os.path.expanduser(value))
    parent, stem = (typed, "") if value.endswith(os.sep) else (typed.parent, typed.name)
    try:
        names = sorted(e.name for e in os.scandir(parent) if e.is_dir())
    except OSError:
        return None
    for name in names:
        if name.startswith(stem) and (stem.startswith(".") or not name.startswith(".")):
            if name == stem:
                continue
            return value[: len(value) - len(stem)] + name + os.sep
    return None


class FoldersOnly(DirectoryTree):
    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if p.is_dir() and not p.name.startswith(".")]


class OpenPathScreen(ModalScreen[str | Recent | None]):
    DEFAULT_CSS = """
    OpenPathScreen { align: center middle; }
    OpenPathScreen #open-box {
        width: 90%; height: 90%; border: round $primary; background: $surface; padding: 0 1;
    }
    OpenPathScreen #open-tree { height: 1fr; }
    OpenPathScreen #open-recent { height: auto; max-height: 6; }
    OpenPathScreen #open-error { color: $error; height: auto; }
    """
    BINDINGS = [
        Binding(
            "escape", "dismiss_none", "Cancel", id="open.cancel", tooltip="Close, open nothing"
        ),
    ]

    def __init__(self, start: Path, recent: list[Recent]) -> None:
        super().__init__()
        self.start, self.recent = start, recent

    def compose(self) -> ComposeResult:
        with Vertical(id="open-box"):
            yield Static(
                "Open model / adapter folder  (Enter opens · → completes · Tab moves "
                "to the tree · Esc cancels)",
                markup=False,
            )
            yield Input(
                str(self.start) + os.sep,
                id="open-path",
                suggester=FolderSuggester(),
                placeholder="/path/to/model-or-adapter",
            )
            yield Static("", id="open-error", markup=False)
            if self.recent:
                yield Static("Recently opened", classes="table-title", markup=False)
                yield OptionList(
                    *[
                        Option(visible_line(r.label + "  ·  " + r.model), id=str(i))
                        for i, r in enumerate(self.recent)
                    ],
                    id="open-recent",
                )
            yield FoldersOnly(self.start, id="open-tree")

    def on_mount(self) -> None:
        self.query_one("#open-path", Input).focus()

    @on(Input.Submitted, "#open-path")
    def _submitted(self, event: Input.Submitted) -> None:
        path = Path(os.path.expanduser(event.value.strip()))
        if not event.value.strip() or not path.is_dir():
            self.query_one("#open-error", Static).update(f"not a folder: {visible_line(path)}")
            return
        self.dismiss(str(path.resolve()))

    @on(DirectoryTree.DirectorySelected, "#open-tree")
    def _picked(self, event: DirectoryTree.DirectorySelected) -> None:
        box = self.query_one("#open-path", Input)
        box.value = str(event.path) + os.sep
        box.cursor_position = len(box.value)

    @on(OptionList.OptionSelected, "#open-recent")
    def _recent(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.recent[int(event.option.id or 0)])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
