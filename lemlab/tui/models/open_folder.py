"""The "Open model / adapter folder…" verb: ask for a folder (path completion, a tree, recent
ones), tell a model from an adapter by its files, load it, remember it (core/recent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import (
    check_adapter_base,
    is_adapter_dir,
    read_adapter_config,
    resolve_base_reference,
)
from lemlab.core.models.recent import Recent, add_recent, load_recent
from lemlab.tui.screens.open_path import OpenPathScreen
from lemlab.tui.state import LabState


class FolderOpener(Protocol):
    """What opening a folder needs from the app (the app imports this module, so the helper
    names its needs instead of importing the app back)."""

    lab: LabState

    def load_model(self, model: str, adapter: str | None = None) -> Any: ...

    def notify(
        self, message: str, *, title: str = ..., severity: Any = ..., timeout: float | None = ...
    ) -> None: ...

    def push_screen(self, screen: Any, callback: Any = ...) -> Any: ...


def adapter_warning(adapter: str, base: str) -> str:
    """The adapter/base mismatch line ('' when they match or cannot be told apart)."""
    try:
        return check_adapter_base(adapter, base) or ""
    except Exception as exc:  # noqa: BLE001 - an unreadable adapter is itself worth a warning
        return f"cannot check adapter {Path(adapter).name}: {exc}"


def ask_open_folder(app: FolderOpener) -> None:

    recent = load_recent()
    start = Path(recent[0].model).parent if recent else Path.home()
    if not start.is_dir():
        start = Path.home()

    def chosen(choice: str | Recent | None) -> None:
        if isinstance(choice, Recent):
            app.load_model(choice.model, choice.adapter or None)
        elif choice:
            open_folder(app, choice)

    app.push_screen(OpenPathScreen(start, recent), chosen)


def open_folder(app: FolderOpener, folder: str) -> None:
    """Load `folder` as a model, or as an adapter on the model loaded now (else on the base
    its adapter_config.json names, when that folder exists)."""
    path = Path(folder).expanduser()
    if is_adapter_dir(path):
        base = _adapter_base(app, path)
        if base is None:
            app.notify(
                f"{path.name} is an adapter: load its base model first "
                "(its adapter_config.json names none that exists here)",
                severity="warning",
            )
            return
        warning = adapter_warning(str(path), base)
        if warning:
            app.notify(warning, title="Adapter / base mismatch", severity="warning", timeout=10)
        app.load_model(base, str(path))
        return
    if not (path / "config.json").is_file():
        app.notify(
            f"not a model or adapter folder (no config.json or adapter_config.json): {path}",
            severity="error",
        )
        return
    app.load_model(str(path), None)


def _adapter_base(app: FolderOpener, adapter: Path) -> str | None:
    loaded = app.lab.loaded
    if loaded is not None and loaded.model_type != "remote":
        return loaded.model_path
    try:
        cfg = read_adapter_config(adapter)
    except LemlabError:
        return None
    base = resolve_base_reference(adapter, str(cfg.get("model") or ""), cfg)
    return str(base) if base is not None else None


def remember(model: str, adapter: str | None) -> tuple[bool, str]:
    """Record a successful local load as recent: (was it new, '' or why it was not saved)."""
    if not Path(model).is_dir():
        return False, ""  # servers and hub ids are not folders to reopen
    new = Recent(model, adapter or "") not in load_recent()
    try:
        add_recent(model, adapter)
    except OSError as exc:
        return False, f"recent models not saved: {exc.strerror or exc}"
    return new, ""
