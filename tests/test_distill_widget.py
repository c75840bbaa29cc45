"""The distill_progress widget in a tiny App (Pilot): counts, keep rate and the kept / rejected
score histogram, fed by real runner events from the tiny model."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

from lemlab.core.distill.output import DistillSettings
from lemlab.core.distill.runner import DistillRunner, SampleScored
from lemlab.tui.widgets.distill_progress import DistillProgress, score_bins


class WidgetApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DistillProgress(threshold=10.0, bin_width=5.0, id="dp")


def test_score_bins_cover_the_range_highest_first() -> None:
    bins = score_bins([(12.0, True), (3.0, False), (-7.5, False), (14.9, True)], 5.0)
    assert [(b.low, b.kept, b.rejected) for b in bins] == [
        (10.0, 2, 0),
        (5.0, 0, 0),
        (0.0, 0, 1),
        (-5.0, 0, 0),
        (-10.0, 0, 1),
    ]
    assert score_bins([], 5.0) == []


async def test_widget_counts_and_histogram() -> None:
    app = WidgetApp()
    async with app.run_test(size=(80, 20)) as pilot:
        dp = app.query_one("#dp", DistillProgress)
        assert "no samples yet" in dp.render().plain
        dp.start(total=8, threshold=10.0, resumed=[(12.0, True)])
        for score, kept in ((3.0, False), (11.0, True), (-4.0, False)):
            dp.record(score, kept)
        await pilot.pause()
        text = dp.render().plain
        assert "kept 2 / generated 4 of 8 · keep rate 50.0% · threshold 10" in text
        rows = text.splitlines()[2:]
        assert rows[0].startswith("    10..15") and "▸" in rows[0] and rows[0].count("█") > 0
        assert rows[0].split()[-1] == "0"  # no rejected sample scored 10..15
        assert len(rows) == 4 and dp.size.height == 6  # summary + header + bins -10..15


async def test_widget_follows_a_real_distill_run(tiny_model: Path) -> None:
    from lemlab.core.battery.probes import resolve_battery
    from lemlab.core.scoring import get_scorer
    from lemlab.engine.mlx_engine import MLXEngine

    settings = DistillSettings(model=str(tiny_model), samples=2, threshold=-10.0, max_tokens=24)
    engine = MLXEngine()
    try:
        events = list(
            DistillRunner(
                engine, resolve_battery("ccp6").probes, settings, get_scorer("v2-distill")
            ).events()
        )
    finally:
        engine.shutdown()
    scored = [e for e in events if isinstance(e, SampleScored)]
    app = WidgetApp()
    async with app.run_test(size=(80, 30)) as pilot:
        dp = app.query_one("#dp", DistillProgress)
        for e in events:
            dp.apply(e)
        await pilot.pause()
        kept = sum(e.sample.kept for e in scored)
        assert (dp.generated, dp.kept, dp.total) == (12, kept, 12)
        assert f"kept {kept} / generated 12 of 12" in dp.render().plain
        assert scored[-1].counts.kept == kept
