"""How often a streaming reply is redrawn: the interval rule on given clock readings (no timing),
the per-reply display log, and both read by the chat pane on the fake engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tui import fake_model_dir, make_app, wait_idle

from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.stream_pacing import (
    FLUSH_SECONDS,
    MAX_FLUSH_SECONDS,
    MAX_UI_SHARE,
    UI_BUDGET,
    DisplayLog,
    Pacer,
    engine_share,
    next_interval,
)


def test_a_gil_bound_engine_leaves_the_ui_its_budget() -> None:
    # 1 s apart, the UI spent 4 ms drawing, the engine thread was busy the whole second
    before, after = (10.0, 2.000, 5.0), (11.0, 2.004, 6.0)
    assert engine_share(before, after) == 1.0
    assert next_interval(before, after) == pytest.approx(0.004 / UI_BUDGET)


def test_an_idle_engine_thread_lets_the_ui_draw_more_often() -> None:
    busy = next_interval((0.0, 0.0, 0.0), (1.0, 0.008, 0.9))
    light = next_interval((0.0, 0.0, 0.0), (1.0, 0.008, 0.2))
    idle = next_interval((0.0, 0.0, 0.0), (1.0, 0.008, 0.0))
    assert busy > light > idle
    assert light == pytest.approx(0.008 / (UI_BUDGET / 0.2))
    assert idle == pytest.approx(
        0.008 / MAX_UI_SHARE
    )  # never more than MAX_UI_SHARE of the UI's time


def test_unknown_engine_clock_counts_as_gil_bound() -> None:
    before, after = (0.0, 0.0, None), (1.0, 0.004, None)
    assert engine_share(before, after) is None
    assert next_interval(before, after) == next_interval((0.0, 0.0, 0.0), (1.0, 0.004, 1.0))


def test_interval_stays_between_its_bounds() -> None:
    assert next_interval((0.0, 0.0, 0.0), (1.0, 0.0, 1.0)) == FLUSH_SECONDS  # free drawing
    assert next_interval((0.0, 0.0, 0.0), (1.0, 0.5, 1.0)) == MAX_FLUSH_SECONDS  # costly drawing
    assert engine_share((1.0, 0.0, 0.0), (1.0, 0.0, 3.0)) is None  # no wall time passed


def test_pacer_adapts_after_the_second_display_and_keeps_its_interval() -> None:
    readings = iter([0.5, 0.6, 0.7])
    pacer = Pacer(lambda: next(readings))
    pacer.displayed()
    assert (
        pacer.interval == FLUSH_SECONDS and pacer.engine_share is None
    )  # one reading: no rate yet
    pacer.displayed()
    assert pacer.engine_share is not None
    kept = pacer.interval
    pacer.start()  # a new reply: the clocks restart, the interval carries over
    assert pacer.interval == kept
    pacer.displayed()
    assert pacer.interval == kept


def test_display_log_counts_tokens_and_keeps_the_first_display() -> None:
    log = DisplayLog(sent=1.0)
    log.shown(3)
    log.shown(5)
    log.shown(0)
    assert (log.tokens, log.first_tokens, log.displays) == (8, 3, 3)
    assert log.sent < log.first <= log.last  # type: ignore[operator]
    assert log.ui_cpu[0] <= log.ui_cpu[1]


async def test_each_reply_gets_its_own_display_log(tmp_path: Path) -> None:
    app, _engine = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        pane = app.query_one("#chat-pane")
        logs = []
        for text in ("first", "second"):
            app.query_one("#chat-input", Composer).value = text
            await pilot.press("enter")
            await wait_idle(pilot, app)
            logs.append(pane.display_log)  # type: ignore[attr-defined]
        assert logs[0] is not logs[1]
        for log, reply in zip(logs, app.lab.session.messages[1::2], strict=True):
            assert log.tokens == reply["stats"]["generation_tokens"] > 0
            assert log.displays >= 1 and log.sent <= log.first <= log.last
        assert pane.displayed_tokens == logs[1].tokens  # type: ignore[attr-defined]
