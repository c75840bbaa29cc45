"""The lemlab shell: a header line, one tab per pane, the footer. Panes do the work; the app
owns loading models, switching sessions and themes, and the global keys."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.widgets import TabbedContent, TabPane

from lemlab.core.engine_api import Engine, Sampler
from lemlab.core.errors import DataError, LemlabError
from lemlab.core.remote.endpoints import is_remote_spec
from lemlab.core.safe_text import visible, visible_line
from lemlab.core.sessions import Session, default_session_name, open_or_create
from lemlab.core.themes import load_theme_choice, save_theme_choice
from lemlab.tui.chat.message import MessageView
from lemlab.tui.commands import LemlabCommands
from lemlab.tui.models.open_folder import ask_open_folder, remember
from lemlab.tui.panes.base import LabPane, Verb
from lemlab.tui.services import Settings
from lemlab.tui.state import LabState
from lemlab.tui.theming import choose_theme, register_themes
from lemlab.tui.widgets.footer import LabFooter
from lemlab.tui.widgets.status_bar import StatusBar

PANE_MODULES = ("models", "chat", "battery", "training")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (
        f"{type(exc).__name__}: {text[0]}"
        if text and not isinstance(exc, LemlabError)
        else (text[0] if text else type(exc).__name__)
    )


class LemlabApp(App[int]):
    CSS_PATH = "lemlab.tcss"
    TITLE = "lemlab"
    COMMANDS = App.COMMANDS | {LemlabCommands}
    BINDINGS = [
        Binding(
            "ctrl+p",
            "command_palette",
            "Palette",
            id="app.palette",
            show=False,
            tooltip="Search every command",
        ),
        Binding("f1", "help", "Help", id="app.help", tooltip="Show all keys and commands"),
        Binding(
            "question_mark",
            "help",
            "Help",
            id="app.help_alt",
            show=False,
            tooltip="Show all keys and commands (when not typing)",
        ),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Leave lemlab"),
        Binding("f2", "show_tab('models')", "Models", id="app.tab_models", tooltip="Models tab"),
        Binding("f3", "show_tab('chat')", "Chat", id="app.tab_chat", tooltip="Chat tab"),
        Binding(
            "f4",
            "show_tab('battery')",
            "Battery",
            id="app.tab_battery",
            show=False,
            tooltip="Battery tab",
        ),
        Binding(
            "f5",
            "show_tab('training')",
            "Training",
            id="app.tab_training",
            show=False,
            tooltip="Training tab",
        ),
        Binding(
            "ctrl+o", "sessions", "Sessions", id="app.sessions", tooltip="Open or start a session"
        ),
        Binding(
            "ctrl+t",
            "pick_theme",
            "Theme",
            id="app.theme",
            show=False,
            tooltip="Switch the colour theme",
        ),
    ]

    def __init__(
        self,
        engine: Engine,
        *,
        settings: Settings | None = None,
        session: Session | None = None,
        model: str | None = None,
        adapter: str | None = None,
        theme: str | None = None,
        demo: bool = False,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.lab = LabState(
            engine, session or Session(name=default_session_name()), self.settings.sessions_dir
        )
        self.lab.set_sampler(
            Sampler(**{**self.settings.sampler.as_dict(), **self.lab.session.sampler})
        )
        self.start_model, self.start_adapter, self.demo = model, adapter, demo
        self.theme_override = theme
        self.applied_keymap: dict[str, str] = {}  # config's keymap minus unknown ids
        self._persist_theme = False

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast (widgets' notify calls land here) quotes errors, file and server text:
        never markup, control characters shown visibly (core/safe_text)."""
        super().notify(
            visible(message),
            title=visible_line(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        with TabbedContent(id="tabs", initial="chat"):
            for pane in self._make_panes():
                with TabPane(pane.TITLE, id=pane.TAB_ID):
                    yield pane
        yield LabFooter()  # F1 first: it stays on screen at 80 columns

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        for pane in event.pane.query(LabPane):
            pane.focus_default()

    def _make_panes(self) -> list[LabPane]:
        return [importlib.import_module(f"lemlab.tui.panes.{m}").PANE() for m in PANE_MODULES]

    @property
    def panes(self) -> list[LabPane]:
        return list(self.query(LabPane))

    def on_mount(self) -> None:
        for problem in register_themes(self):
            self.notify(f"theme file skipped: {problem}", severity="warning", timeout=8)

        name, note = choose_theme(
            self, [self.theme_override, self.settings.theme, load_theme_choice()]
        )
        self.theme = name
        if note:
            self.notify(note, severity="warning")
        self._apply_keymap()
        if self.settings.error:
            self.notify(f"config not used: {self.settings.error}", severity="error", timeout=10)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._persist_theme = True
        self.lab.set_kernel(self.lab.kernel_name, self.lab.system_text)
        self.refresh_status()
        self.query_one("#chat-pane", LabPane).focus_default()
        self.call_after_refresh(self._after_first_paint)

    def _apply_keymap(self) -> None:
        keymap = self.settings.keymap
        known = {b.id for b in self._all_bindings() if b.id}
        unknown = sorted(set(keymap) - known)
        if unknown:
            self.notify(f"keymap: unknown binding ids {', '.join(unknown)}", severity="warning")
        # Kept here for the help screen: Textual keeps its copy in a private attribute.
        self.applied_keymap = {k: v for k, v in keymap.items() if k in known}
        self.set_keymap(self.applied_keymap)

    def _all_bindings(self) -> list[Binding]:
        scopes = [self.BINDINGS, *[type(p).BINDINGS for p in self.panes], MessageView.BINDINGS]
        return [b for scope in scopes for b in scope if isinstance(b, Binding)]

    def _after_first_paint(self) -> None:
        # The model loads after the first frame is on screen, never inside compose.
        for pane in self.panes:
            pane.session_opened()
        model = self.start_model or self._session_model()
        if model:
            adapter = self.start_adapter
            if adapter is None and not self.start_model:
                adapter = self._session_adapter()
            self.load_model(model, adapter)
        elif self.demo:
            self.prepare_demo()

    def _session_model(self) -> str | None:
        """The session's model, when it can still be loaded: a folder that exists, or a server
        spec (the router reaches it; an unreachable server is reported like any load error)."""
        path = self.lab.session.model.get("path")
        if not path:
            return None
        return path if is_remote_spec(path) or Path(path).exists() else None

    def _session_adapter(self) -> str | None:
        path = self.lab.session.adapter.get("path")
        return path if path and Path(path).exists() else None

    # -- status --------------------------------------------------------------------------------
    def refresh_status(self) -> None:
        info = self.lab.loaded
        self.query_one(StatusBar).show(
            model=info.model_path if info else None,
            adapter=info.adapter_path if info else None,
            kernel=self.lab.kernel_name,
            session=self.lab.session.name,
            is_demo=bool(info and info.is_demo),
            busy=f"loading {self.lab.loading}…" if self.lab.loading else "",
        )
        for pane in self.panes:
            pane.model_changed()

    # -- models ----------------------------------------------------------------------------------
    @work(exclusive=True, group="load")
    async def load_model(self, model: str, adapter: str | None = None) -> None:
        self.lab.loading = Path(model).name + (f" + {Path(adapter).name}" if adapter else "")
        self.refresh_status()
        try:
            info = await asyncio.wrap_future(self.lab.engine.load(model, adapter))
        except Exception as exc:  # noqa: BLE001 - any load failure is one line in the UI
            self.notify(f"load failed: {_one_line(exc)}", severity="error", timeout=10)
            return
        finally:
            self.lab.loading = ""
            self.refresh_status()
        self.lab.session.set_model(info.model_path, is_demo=info.is_demo)
        self.lab.session.set_adapter(info.adapter_path)
        self.lab.save()
        new, problem = remember(info.model_path, info.adapter_path)
        if problem:
            self.notify(problem, severity="warning")
        elif new:  # a folder opened by path joins the Models pane's lists
            self.query_one("#models-pane").action_rescan()  # type: ignore[attr-defined]
        for warning in info.warnings:
            self.notify(warning, title="Loaded with warnings", severity="warning", timeout=10)
        self.refresh_status()

    @work(exclusive=True, group="load")
    async def unload_model(self) -> None:
        try:
            await asyncio.wrap_future(self.lab.engine.unload())
        except Exception as exc:  # noqa: BLE001
            self.notify(f"unload failed: {_one_line(exc)}", severity="error")
        self.refresh_status()

    @work(exclusive=True, group="demo")
    async def prepare_demo(self) -> None:
        from lemlab.tui.models.demo import demo_plan, ensure_demo_model

        plan = demo_plan()
        self.lab.loading = plan[2]
        self.refresh_status()
        try:
            path = await ensure_demo_model(plan)
        except LemlabError as exc:
            self.lab.loading = ""
            self.refresh_status()
            self.notify(str(exc), severity="error", timeout=15)
            return
        self.query_one("#models-pane").action_rescan()  # type: ignore[attr-defined]
        self.load_model(str(path))

    # -- sessions, themes, tabs, help ---------------------------------------------------------
    def open_session(self, name: str) -> None:
        old = self.lab.session
        if old.path is not None and old.lock is not None and name == old.name:
            self.notify(f"session {name} is already open")
            return
        try:
            # Locked while open here (writers: core/sessions.py); the one it replaces is freed
            # unless a running job still records into it (that job's end frees it).
            session, created = open_or_create(name, self.lab.sessions_dir, lock=True)
        except (DataError, LemlabError) as exc:
            self.notify(str(exc).splitlines()[0], severity="error", timeout=10)
            return
        chat = self.query_one("#chat-pane")
        chat.action_cancel()  # type: ignore[attr-defined]
        self.lab.session = session
        if not any(p.reports_to(old) for p in self.panes):
            old.release()
        self.lab.kernel_text = ""
        if session.sampler:
            self.lab.set_sampler(Sampler(**{**self.lab.sampler.as_dict(), **session.sampler}))
        for pane in self.panes:
            pane.session_opened()
        self.refresh_status()
        self.notify(f"{'new' if created else 'opened'} session {name}")

    def action_sessions(self) -> None:
        from lemlab.tui.screens.sessions import SessionsScreen

        self.push_screen(
            SessionsScreen(self.lab.sessions_dir),
            lambda name: self.open_session(name) if name else None,
        )

    def _theme_changed(self, theme: object) -> None:
        if not self._persist_theme or self.theme == self.theme_override:
            return
        try:
            save_theme_choice(self.theme)
        except (OSError, LemlabError) as exc:
            self.notify(f"theme not saved: {exc}", severity="warning")

    async def action_quit(self) -> None:
        # A pane with live work (a training run) asks first: leave it running, stop it, cancel.
        for pane in self.panes:
            if pane.live_work():
                pane.ask_before_quit(self.exit)
                return
        self.exit()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """The palette's "Screenshot": under the data folder, not ~/Downloads (see screenshots)."""
        from lemlab.tui.screenshots import save_screenshot

        return save_screenshot(self, filename, path)

    def action_pick_theme(self) -> None:
        self.search_themes()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_help(self) -> None:
        from lemlab.tui.screens.help import HelpScreen, binding_rows

        scopes = [
            ("app", self.BINDINGS),
            *[(p.TITLE.lower(), type(p).BINDINGS) for p in self.panes],
            ("chat message", MessageView.BINDINGS),
        ]
        self.push_screen(HelpScreen(binding_rows(scopes, self.applied_keymap)))

    def all_verbs(self) -> Iterable[Verb]:
        yield Verb("Help: keys and commands", "F1", self.action_help)
        yield Verb("Open session…", "list saved sessions", self.action_sessions)
        yield Verb("New session…", "start a named session", self._new_session)
        yield Verb("Switch theme…", "choose a colour theme", self.action_pick_theme)
        yield Verb(
            "Open model / adapter folder…",
            "a path (with completion), a folder tree or a recent one",
            lambda: ask_open_folder(self),
        )
        yield Verb("Load model…", "go to the Models tab", lambda: self.action_show_tab("models"))
        yield Verb("Unload model", "free the model", self.unload_model)
        for pane in self.panes:
            yield Verb(f"Show {pane.TITLE} tab", "", partial(self.action_show_tab, pane.TAB_ID))
            yield from pane.palette_verbs()
        yield Verb("Quit", "leave lemlab", self.exit)

    def _new_session(self) -> None:
        from lemlab.tui.screens.prompt import TextPrompt

        self.push_screen(
            TextPrompt("New session name"), lambda n: self.open_session(n.strip()) if n else None
        )
