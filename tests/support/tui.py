"""Helpers for the TUI tests: a fake model folder, an app wired to FakeEngine, waiting."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable
from pathlib import Path

from lemlab.core.sessions import Session
from lemlab.engine.fake import FakeEngine
from lemlab.tui.app import LemlabApp
from lemlab.tui.panes.training import TrainingPane
from lemlab.tui.services import Settings


def fake_model_dir(root: Path, name: str = "fake-model") -> Path:
    """A folder that looks like a model to the scanner (FakeEngine never reads weights)."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    header = json.dumps(
        {"model.embed_tokens.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]}}
    ).encode()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(32))
    return d


def make_app(
    tmp: Path,
    *,
    engine: FakeEngine | None = None,
    session: str = "s1",
    model: Path | None = None,
    keymap: dict[str, str] | None = None,
    theme: str | None = None,
) -> tuple[LemlabApp, FakeEngine]:
    engine = engine or FakeEngine(fixed_stats=True)
    settings = Settings(
        keymap=keymap or {},
        model_dirs=[tmp / "models"],
        sessions_dir=tmp / "sessions",
        scan_hf_cache=False,
    )
    app = LemlabApp(
        engine,
        settings=settings,
        session=Session(name=session, created="2026-01-01T00:00:00+00:00"),
        model=str(model) if model else None,
        theme=theme,
    )
    return app, engine


async def wait_idle(pilot, app: LemlabApp) -> None:  # type: ignore[no-untyped-def]
    """Let workers (load, stream) finish and the screen catch up."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def until(pilot, ok: Callable[[], bool], guard: float = 120, step: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    """Pause until ok() holds; the guard only stops a hung test (no timing is asserted)."""
    deadline = time.monotonic() + guard
    while not ok():
        assert time.monotonic() < deadline, "gave up waiting"
        await pilot.pause(step)


async def open_training_tab(pilot) -> TrainingPane:  # type: ignore[no-untyped-def]
    """Once the app is idle, the training tab shown; its pane."""
    await wait_idle(pilot, pilot.app)
    pilot.app.action_show_tab("training")
    await pilot.pause()
    return pilot.app.query_one(TrainingPane)
