"""Palette "Screenshot": an SVG of the screen saved under lemlab's data folder. Textual's default
is ~/Downloads, which a server often lacks; the toast says where the file went."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lemlab.core.atomic import write_text_atomic
from lemlab.core.paths import get_paths

if TYPE_CHECKING:
    from textual.app import App


def screenshots_dir() -> Path:
    return get_paths().data_dir / "screenshots"


def save_screenshot(
    app: App[Any], filename: str | None = None, folder: str | None = None
) -> str | None:
    """Write the SVG; the path, or None after a one-line error toast."""
    name = filename or time.strftime("lemlab-%Y%m%d-%H%M%S.svg")
    target = (Path(folder).expanduser() if folder else screenshots_dir()) / name
    try:
        write_text_atomic(target, app.export_screenshot())
    except OSError as exc:
        app.notify(f"screenshot not saved to {target}: {exc.strerror or exc}", severity="error")
        return None
    app.notify(f"screenshot saved to {target}", title="Screenshot")
    return str(target)
