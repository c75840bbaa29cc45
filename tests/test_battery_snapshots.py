"""SVG snapshots (80x24 and 120x40) of the Battery tab's score table and the side-by-side view,
drawn from the fixed fixture A/B file: the kernel's name (ethics), failure tags, delta columns,
the responses and F1 in the footer. Update with `pytest --snapshot-update`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.battery import SMALL_RUN, copy_fixture
from support.tui import make_app, wait_idle


def _app(tmp_path: Path):  # type: ignore[no-untyped-def]
    app, _ = make_app(tmp_path / "lab", theme="lemlab-dark", session="snapshot")
    return app


async def _open_fixture(pilot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_idle(pilot, app)
    app.action_show_tab("battery")
    pane = app.query_one("#battery-pane")
    assert pane.open_run(copy_fixture(SMALL_RUN, tmp_path / "lab" / "runs"))
    await pilot.pause()


async def _settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await wait_idle(pilot, pilot.app)
    pilot.app.clear_notifications()
    await pilot.pause()


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
def test_score_table_snapshot(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open_fixture(pilot, tmp_path)
        await pilot.press("right", "right", "right", "d")  # sort by the ethics delta
        await _settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=run_before)


@SIZES
def test_side_by_side_snapshot(snap_compare, tmp_path: Path, size) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open_fixture(pilot, tmp_path)
        await pilot.press(
            "right", "right", "right", "down", "down", "v"
        )  # xinjiang: refusal vs ethics
        await _settle(pilot)

    assert snap_compare(_app(tmp_path), terminal_size=size, run_before=run_before)
