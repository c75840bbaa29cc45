"""The live `lemlab watch` screen, headless: the monitor block, its clock, the chart fitted to
the terminal, the header on long paths, and waiting for a run whose first event is not written."""

from __future__ import annotations

from pathlib import Path

from lemlab.commands.watch import screen_lines, source_for
from lemlab.core.training.events import RunSource, RunState, RunWatcher, TrainingEvent, load_run
from lemlab.core.training.summary import monitor_lines
from lemlab.core.training.textchart import render_loss_chart

FIX = Path(__file__).resolve().parent / "fixtures" / "training"


def _running_state() -> RunState:
    state = RunState(total_iters=100)
    for ev in (
        TrainingEvent("start", ts=1000.0, total_iters=100),
        TrainingEvent("val", 1, ts=1000.5, val_loss=7.0),
        TrainingEvent(
            "train",
            10,
            ts=1002.0,
            train_loss=6.5,
            learning_rate=1e-5,
            tokens_per_second=4200.0,
            trained_tokens=900,
            peak_memory=0.5,
        ),
        TrainingEvent("checkpoint", 10, ts=1002.1, path="/r/0000010_adapters.safetensors"),
        TrainingEvent(
            "train",
            20,
            ts=1004.0,
            train_loss=6.0,
            learning_rate=1e-5,
            tokens_per_second=4300.0,
            trained_tokens=1800,
            peak_memory=0.5,
        ),
    ):
        state.apply(ev)
    return state


def test_monitor_lines_show_every_figure_and_tick_between_reports() -> None:
    state = _running_state()
    text = "\n".join(monitor_lines(state, now=1004.0, chart=False))
    assert "status     running   elapsed 4s   ETA 16s   last event 0s ago" in text  # 5 it/s
    assert "iteration 20/100 [####" in text and "5.0 it/s" in text
    assert "train loss 6.000 (ppl 403.4) at iteration 20" in text
    assert "val loss   7.000 (ppl 1,096.6) at iteration 1" in text
    # The best validation (iteration 1) is not where the checkpoint was saved (10): "nearest".
    assert (
        "best val   7.000 at iteration 1, nearest checkpoint 0000010_adapters.safetensors" in text
    )
    assert "lr 1.00e-05   tokens/s 4,300   trained tokens 1,800   peak mem 0.5 GB" in text
    later = "\n".join(monitor_lines(state, now=1010.0, chart=False))
    assert "elapsed 10s   ETA 10s   last event 6s ago" in later  # a quiet run is visible
    state.apply(TrainingEvent("val", 10, ts=1005.0, val_loss=6.2))
    state.apply(TrainingEvent("done", ts=1006.0))
    done = "\n".join(monitor_lines(state, now=2000.0, chart=False))
    assert "status     done   took 6s" in done and "ETA" not in done
    assert "best val   6.200 at iteration 10, checkpoint 0000010_adapters.safetensors" in done


def test_the_chart_fills_the_terminal_height_within_bounds() -> None:
    state = _running_state()
    for height, rows in ((40, 24), (30, 19), (24, 13), (10, 6)):
        lines = monitor_lines(state, width=120, height=height, now=1004.0)
        chart_rows = [ln for ln in lines if "│" in ln]
        assert len(chart_rows) == rows
        if 6 < rows < 24:
            assert len(lines) == height  # exactly fills what it was given
    assert monitor_lines(RunState(), height=40)[-1] == "(no loss reported yet)"


def test_chart_labels_middle_row_and_iteration_axis() -> None:
    lines = render_loss_chart(
        [(10, 6.0), (50, 5.0)], [(1, 7.0)], width=41, height=5, total_iters=100
    )
    assert [ln.split("│")[0].strip() for ln in lines[:5]] == ["7.000", "", "6.000", "", "5.000"]
    axis = lines[6].split()
    assert axis == ["1", "50", "100"]
    assert "@ both" in lines[7]
    crowded = render_loss_chart([(5, 6.0)], width=10, height=3, total_iters=100_000)
    assert crowded[4].split() == ["1", "100000"]  # the middle label gives way to the ends


def test_header_keeps_the_hint_on_a_long_path(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 150) / "adapter"
    deep.mkdir(parents=True)
    (deep / "events.jsonl").write_text(
        (FIX / "lemlab_events.jsonl").read_text().split("\n", 1)[0] + "\n"
    )
    watcher = RunWatcher(RunSource(deep / "events.jsonl", deep))
    watcher.poll()
    head = screen_lines(watcher, 80, 24)[0]
    assert len(head) <= 80 and head.startswith("watching …") and "adapter/events.jsonl" in head
    assert head.endswith("(Ctrl+C leaves the watch; the run carries on)")


def test_a_lemlab_run_folder_waits_for_its_events_file(tmp_path: Path) -> None:
    (tmp_path / "lemlab-train.toml").write_text("schema_version = 1\n[train]\niters = 30\n")
    (tmp_path / "train.log").write_text("")  # written before the trainer's first event
    source = source_for(str(tmp_path))
    assert source.file == tmp_path / "events.jsonl"
    watcher = RunWatcher(source)
    watcher.poll()
    assert watcher.state.status == "waiting" and watcher.state.total_iters == 30
    (tmp_path / "events.jsonl").write_text((FIX / "lemlab_events.jsonl").read_text())
    watcher.poll()
    assert watcher.state.status == "done"
    assert screen_lines(watcher, 120, 40)[0].endswith("(ended: done)")
    assert load_run(tmp_path).status == "done"
