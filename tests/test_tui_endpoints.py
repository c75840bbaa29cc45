"""The Models pane lists configured endpoints with the models they report (a real mlx_lm.server
on 127.0.0.1 serving the tiny model) and one line for an unreachable one; picking a row loads it
through the engine router, and the app's engine then answers from the server."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tui import wait_idle
from textual.widgets import DataTable

from lemlab.core.engine_api import Sampler
from lemlab.core.remote.endpoints import Endpoint
from lemlab.core.sessions import Session
from lemlab.engine.fake import FakeEngine
from lemlab.engine.mlx_server import LocalServer, free_port
from lemlab.engine.router import EngineRouter
from lemlab.tui.app import LemlabApp
from lemlab.tui.models.rows import endpoint_rows
from lemlab.tui.services import Settings, load_settings

pytestmark = pytest.mark.slow


def _app(tmp: Path, endpoints: dict[str, Endpoint]) -> tuple[LemlabApp, EngineRouter]:
    router = EngineRouter(endpoints, local_factory=lambda: FakeEngine(fixed_stats=True))
    settings = Settings(
        model_dirs=[tmp / "models"],
        sessions_dir=tmp / "sessions",
        scan_hf_cache=False,
        endpoints=endpoints,
    )
    app = LemlabApp(router, settings=settings, session=Session(name="s1"))
    return app, router


def _rows(table: DataTable) -> list[list[str]]:  # type: ignore[type-arg]
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


SECRET = "sk-tui-test-91be"


async def test_models_pane_lists_endpoints_and_loads_one(
    tiny_server: LocalServer, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEMLAB_TUI_TEST_KEY", SECRET)  # sent as a header, stored nowhere
    dead_url = f"http://127.0.0.1:{free_port()}/v1"
    endpoints = {
        "studio": Endpoint(url=tiny_server.url, name="studio", api_key_env="LEMLAB_TUI_TEST_KEY"),
        "gone": Endpoint(url=dead_url, name="gone"),
    }
    app, router = _app(tmp_path, endpoints)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f2")
            await wait_idle(pilot, app)
            table = app.query_one("#endpoints-table", DataTable)
            assert table.display and app.query_one("#endpoints-title").display
            rows = _rows(table)
            served = str(tiny_model.resolve())
            assert ["studio", served, tiny_server.url, "ok"] in rows
            gone = [r for r in rows if r[0] == "gone"]
            assert len(gone) == 1 and "connection refused" in gone[0][3] and "\n" not in gone[0][3]
            # pick the server's model: loaded through the router, no local engine made
            table.focus()
            index = next(i for i, r in enumerate(rows) if r[0] == "studio")
            table.move_cursor(row=index)
            await pilot.press("enter")
            await wait_idle(pilot, app)
            info = app.lab.loaded
            assert info is not None and info.model_type == "remote"
            assert info.model_path == f"endpoint:studio#{served}"
            assert router.is_remote and router.local is None
            status = str(app.query_one("#models-status").render())
            assert "loaded endpoint:studio" in status
            # the chat and battery panes use app.lab.engine: it now answers from the server
            text, stats = app.lab.engine.generate(
                [{"role": "user", "content": "hi"}], Sampler(max_tokens=6)
            ).result()
            assert stats.finish_reason in ("stop", "length") and stats.generation_tokens >= 1
        saved = [p.read_text() for p in (tmp_path / "sessions").rglob("*") if p.is_file()]
        assert saved and any(f"endpoint:studio#{served}" in t for t in saved)
        assert not any(SECRET in t for t in saved)
    finally:
        router.shutdown()


async def test_no_endpoints_keeps_the_section_hidden(tmp_path: Path) -> None:
    app, router = _app(tmp_path, {})
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("f2")
            await wait_idle(pilot, app)
            assert not app.query_one("#endpoints-table").display
            assert app.query_one("#endpoints-table", DataTable).row_count == 0
    finally:
        router.shutdown()


def test_endpoint_rows_and_settings(tiny_server: LocalServer, lemlab_home: Path) -> None:
    named = Endpoint(url=tiny_server.url, name="box", model="/some/model")
    assert [r.cells() for r in endpoint_rows("box", named)] == [
        ("box", "/some/model", tiny_server.url, "ok")
    ]
    from lemlab.core.paths import get_paths

    config = get_paths().config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[endpoints.box]\nurl = "{tiny_server.url}"\napi_key_env = "NO_SUCH_KEY_VAR"\n'
    )
    settings = load_settings()
    assert settings.error == "" and list(settings.endpoints) == ["box"]
    (row,) = endpoint_rows("box", settings.endpoints["box"])
    assert "NO_SUCH_KEY_VAR is not set" in row.status and row.spec == "endpoint:box"
