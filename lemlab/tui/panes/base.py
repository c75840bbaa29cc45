"""The pane contract. A pane is a module `lemlab.tui.panes.<name>` exposing `PANE`, a LabPane
subclass; the app mounts one tab per pane in PANE_MODULES order and calls the hooks below."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from textual.containers import Vertical

from lemlab.core.sessions import Session

if TYPE_CHECKING:
    from lemlab.tui.state import LabState


class Verb(NamedTuple):
    """A command-palette entry a pane offers (name, one-line help, what it does)."""

    name: str
    help: str
    run: Callable[[], object]


class LabPane(Vertical):
    TAB_ID: ClassVar[str] = ""  # tab id, e.g. "battery"; the app binds a key to show it
    TITLE: ClassVar[str] = ""  # tab label
    FOCUS: ClassVar[str] = ""  # selector of the widget focused when the tab is shown

    def focus_default(self) -> None:
        if not self.FOCUS:
            return
        targets = self.query(self.FOCUS)
        if targets:
            targets.first().focus()

    @property
    def lab(self) -> LabState:
        return self.app.lab  # type: ignore[attr-defined]  # LemlabApp's; the app imports the panes

    def palette_verbs(self) -> list[Verb]:
        """Verbs this pane adds to ctrl+p (shown whichever tab is active)."""
        return []

    def session_opened(self) -> None:
        """A session was opened or created: redraw from self.lab.session."""

    def model_changed(self) -> None:
        """A model/adapter was loaded or unloaded: self.lab.loaded is current."""

    def reports_to(self, session: Session) -> bool:
        """A run of this pane is writing to `session` now (the app keeps its lock until it ends)."""
        return False

    def live_work(self) -> str:
        """A sentence naming work that quitting would affect ("" = none): the app asks first."""
        return ""

    def ask_before_quit(self, quit_app: Callable[[], object]) -> None:
        """Ask about `live_work()`, then call `quit_app` unless the user cancels."""
        quit_app()
