"""`lemlab` with no command: open the TUI. Called by lemlab.cli.main with the LaunchOptions
its flags give (--session, --model, --adapter, --theme, --demo)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lemlab.core.engine_api import Engine
from lemlab.core.errors import LemlabError
from lemlab.core.locks import LockHeld
from lemlab.core.remote.endpoints import is_remote_spec
from lemlab.core.sessions import default_session_name, open_or_create


@dataclass(frozen=True)
class LaunchOptions:
    """What the TUI opens with: a session (None: a new one named by the time), a model and
    adapter to load at start, a theme for this run, the embedded demo model."""

    session: str | None = None
    model: str | None = None
    adapter: str | None = None
    theme: str | None = None
    demo: bool = False


def make_engine() -> Engine:
    """An EngineRouter: local models on the MLX engine (one thread owns MLX, created on the
    first local load), `openai:` / `endpoint:` specs on a remote engine. LEMLAB_FAKE_ENGINE=1
    puts the fake engine in MLX's place, for trying the UI (and tmux tests) without MLX."""
    import os

    from lemlab.engine.router import EngineRouter

    if os.environ.get("LEMLAB_FAKE_ENGINE"):
        from lemlab.engine.fake import FakeEngine

        return EngineRouter(local_factory=lambda: FakeEngine(delay=0.02))
    return EngineRouter(local_factory=_mlx_engine)


def _mlx_engine() -> Engine:
    from lemlab.engine.mlx_engine import MLXEngine  # mlx: imported on the first local load

    return MLXEngine()


def launch(opts: LaunchOptions) -> int:
    from lemlab.tui.services import load_settings

    settings = load_settings()
    session_name = opts.session
    if session_name:
        # Held for the life of the TUI: a second lemlab on this session gets one line, exit 2.
        session, _ = open_or_create(session_name, settings.sessions_dir, lock=True)
    else:
        base = default_session_name()
        for n in range(1, 100):  # two TUIs started in the same second get distinct sessions
            try:
                name = base if n == 1 else f"{base}-{n}"
                session, _ = open_or_create(name, settings.sessions_dir, lock=True)
                break
            except LockHeld:
                continue
        else:
            raise LemlabError(f"cannot start a new session: {base} and 98 more are in use")
    adapter = opts.adapter
    # A remote model's adapter is a path on the server: only a local one is checked here.
    if adapter and not is_remote_spec(str(opts.model or "")):
        if not Path(adapter).expanduser().exists():
            raise LemlabError(f"--adapter {adapter}: no such folder")
    from lemlab.tui.app import LemlabApp

    engine = make_engine()
    try:
        app = LemlabApp(
            engine,
            settings=settings,
            session=session,
            model=opts.model,
            adapter=opts.adapter,
            theme=opts.theme,
            demo=opts.demo,
        )
        app.run()
    finally:
        # After App.run() returns, not in on_unmount: the engine thread clears its MLX streams.
        engine.shutdown()
    return int(app.return_code or 0)
