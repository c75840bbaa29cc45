"""Headless training-event parsing, following, run state, charts and score-vs-checkpoint."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from lemlab.core.training.checkpoint_scores import align_scores, compare_checkpoints
from lemlab.core.training.events import (
    RunSource,
    RunState,
    RunWatcher,
    TrainingEvent,
    event_to_dict,
    load_run,
    parse_event_line,
    parse_log_line,
    resolve_run_source,
    strip_ansi,
)
from lemlab.core.training.file_follower import LineFollower
from lemlab.core.training.textchart import BOTH_MARK, TRAIN_MARK, VAL_MARK, render_loss_chart

FIX = Path(__file__).resolve().parent / "fixtures" / "training"
# The three real runs used the same seed and data, so every format must give these numbers.
TRAIN = [(5, 6.904), (10, 6.604), (15, 6.329), (20, 6.054), (25, 5.809), (30, 5.618)]
VAL = [(1, 7.002), (10, 6.528), (20, 6.022), (30, 5.62)]


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("mlx_lm_0.32.2_new_format.log", "log-new"),
        ("mlx_lm_0.32.2_new_format_pty.log", "log-new"),
        ("mlx_lm_0.31.3_old_format.log", "log-old"),
    ],
)
def test_stdout_fixtures_parse_to_the_same_curve(name: str, fmt: str) -> None:
    state = load_run(FIX / name)
    assert state.log_format == fmt
    assert state.train_points == TRAIN
    assert state.val_points == VAL
    assert [it for it, _ in state.checkpoints] == [10, 20, 30]
    assert state.total_iters == 30 and state.iteration == 30
    assert state.status == "done"
    assert state.best_val == (30, 5.62)
    assert state.best_checkpoint is not None and state.best_checkpoint.endswith(
        "0000030_adapters.safetensors"
    )


def test_old_format_carries_lr_rate_and_memory_new_format_does_not() -> None:
    old = load_run(FIX / "mlx_lm_0.31.3_old_format.log")
    new = load_run(FIX / "mlx_lm_0.32.2_new_format.log")
    assert old.learning_rate == pytest.approx(1e-5)
    assert old.peak_memory == pytest.approx(0.004)
    assert old.last_train is not None and old.last_train.iterations_per_second == pytest.approx(
        53.553
    )
    assert new.learning_rate is None and new.peak_memory is None
    assert new.tokens_per_second == 4002 and new.trained_tokens == 2600


def test_events_fixture_matches_the_logs_with_cli_numbering() -> None:
    state = load_run(FIX / "lemlab_events.jsonl")
    assert [(i, round(v, 3)) for i, v in state.train_points] == TRAIN
    assert [(i, round(v, 2)) for i, v in state.val_points] == [(i, round(v, 2)) for i, v in VAL]
    assert state.status == "done" and state.total_iters == 30
    assert state.learning_rate == pytest.approx(1e-5)
    assert state.iterations_per_second is not None and state.iterations_per_second > 0


def test_new_format_row_shapes_after_ansi() -> None:
    row = "\x1b[38;5;244m  10\x1b[0m    \x1b[1;32m6.604 ▼\x1b[0m    \x1b[1m4,459\x1b[0m    \x1b[38;5;244m  0.9k\x1b[0m"
    assert strip_ansi(row).strip().startswith("10")
    (ev,) = parse_log_line(row)
    assert (ev.kind, ev.iteration, ev.train_loss, ev.tokens_per_second) == (
        "train",
        10,
        6.604,
        4459.0,
    )
    (val,) = parse_log_line("    10    val 7.215    0.08s")
    assert (val.kind, val.iteration, val.val_loss, val.val_time) == ("val", 10, 7.215, 0.08)
    (ck,) = parse_log_line("  save  0000010_adapters.safetensors")
    assert (ck.kind, ck.iteration) == ("checkpoint", 10)
    # mlx-lm formats iter as {it:>4} and tokens as {k:>5.1f}k: no thousands separators there.
    (up,) = parse_log_line("  1250    2.001 ▲    12,490    1204.4k")
    assert (up.iteration, up.train_loss, up.trained_tokens) == (1250, 2.001, 1204400)


def test_old_format_spec_lines() -> None:
    (ev,) = parse_log_line(
        "Iter 10: Train loss 2.345, Learning Rate 1.000e-05, It/sec 0.512, "
        "Tokens/sec 812.3, Trained Tokens 12345, Peak mem 18.2 GB"
    )
    assert (ev.iteration, ev.train_loss, ev.learning_rate, ev.trained_tokens, ev.peak_memory) == (
        10,
        2.345,
        1e-5,
        12345,
        18.2,
    )
    (val,) = parse_log_line("Iter 10: Val loss 2.456, Val took 3.21s")
    assert (val.kind, val.val_loss, val.val_time) == ("val", 2.456, 3.21)
    assert parse_log_line("Loading pretrained model") == []


def test_event_lines_roundtrip_and_bad_lines_are_skipped() -> None:
    ev = TrainingEvent("val", 10, val_loss=1.5, val_time=0.2)
    again = parse_event_line(json.dumps(event_to_dict(ev)))
    assert again == ev
    for bad in ("", "not json", "{broken", '{"event": "mystery"}', "[1, 2]"):
        assert parse_event_line(bad) is None
    # A train event without a loss is ignored by the state rather than crashing it.
    state = RunState()
    state.apply(TrainingEvent("train", 5))
    assert state.train_points == []


def test_run_state_eta_perplexity_and_best_checkpoint() -> None:
    state = RunState(total_iters=100)
    state.apply(TrainingEvent("start", total_iters=100, ts=1000.0))
    state.apply(TrainingEvent("train", 10, ts=1010.0, train_loss=2.0, iterations_per_second=5.0))
    state.apply(TrainingEvent("val", 10, ts=1011.0, val_loss=1.9))
    state.apply(TrainingEvent("checkpoint", 10, path="a/0000010_adapters.safetensors"))
    state.apply(TrainingEvent("train", 20, ts=1020.0, train_loss=1.5, iterations_per_second=5.0))
    state.apply(TrainingEvent("val", 20, ts=1021.0, val_loss=2.1))
    state.apply(TrainingEvent("checkpoint", 20, path="a/0000020_adapters.safetensors"))
    # Wall-clock rate: 10 iterations in 10 s -> 80 remaining take 80 s.
    assert state.iterations_per_second == pytest.approx(1.0)
    assert state.eta_seconds == pytest.approx(80.0)
    assert state.best_val == (10, 1.9)
    assert state.best_checkpoint == "a/0000010_adapters.safetensors"
    state.apply(TrainingEvent("stopped", ts=1030.0, message="stopped by SIGINT"))
    assert state.finished and state.eta_seconds is None and state.message == "stopped by SIGINT"
    from lemlab.core.training.events import perplexity

    assert perplexity(2.0) == pytest.approx(math.exp(2.0)) and perplexity(None) is None


# ---------------------------------------------------------------- follower


def test_follower_partial_lines_truncation_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    f = LineFollower(path)
    assert f.poll() == ([], False)  # not created yet
    path.write_bytes(b'{"a": 1}\n{"b":')
    assert f.poll() == (['{"a": 1}'], False)  # the partial second line is held back
    with open(path, "ab") as fh:
        fh.write(b" 2}\n")
    assert f.poll() == (['{"b": 2}'], False)
    assert f.poll() == ([], False)
    path.write_bytes(b"x\n")  # truncated: shorter than what was read
    assert f.poll() == (["x"], True)
    path.write_bytes(b"y\n" + b"z" * 100 + b"\n")  # rewritten in place and longer than before
    lines, reset = f.poll()
    assert reset and lines[0] == "y"
    rotated = tmp_path / "new.jsonl"
    rotated.write_bytes(b"fresh\n")
    os.replace(rotated, path)  # rotation: a different file under the same name
    assert f.poll() == (["fresh"], True)


def test_watcher_follows_a_log_written_in_chunks(tmp_path: Path) -> None:
    raw = (FIX / "mlx_lm_0.32.2_new_format.log").read_bytes()
    path = tmp_path / "train.log"
    path.write_bytes(b"")
    watcher = RunWatcher(RunSource(path, tmp_path))
    for i in range(0, len(raw), 97):  # odd chunk size: splits lines and UTF-8 sequences
        with open(path, "ab") as fh:
            fh.write(raw[i : i + 97])
        watcher.poll()
    assert watcher.state.train_points == TRAIN and watcher.state.val_points == VAL
    path.write_bytes(raw[: raw.index(b"save")])  # truncated mid-run: state starts over
    watcher.poll()
    assert watcher.state.checkpoints == [] and watcher.state.val_points == VAL[:2]


def test_resolve_run_source_prefers_events_then_log(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        resolve_run_source(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        resolve_run_source(tmp_path)
    (tmp_path / "train.log").write_text("")
    assert resolve_run_source(tmp_path).file.name == "train.log"
    (tmp_path / "events.jsonl").write_text("")
    assert resolve_run_source(tmp_path).file.name == "events.jsonl"


# ---------------------------------------------------------------- chart and scores


def test_text_chart_marks_and_size() -> None:
    lines = render_loss_chart(TRAIN, VAL, width=40, height=6, total_iters=30)
    body = "\n".join(lines)
    assert TRAIN_MARK in body and VAL_MARK in body and BOTH_MARK in body
    assert lines[0].startswith("7.002") and "\x1b" not in body
    assert len(lines) == 6 + 3 and all(len(ln) <= 6 + 2 + 40 for ln in lines[:6])
    many = [(i, 5 - i / 50_000) for i in range(1, 100_001)]
    assert len(render_loss_chart(many, width=50, height=8)) == 11
    assert render_loss_chart([], []) == ["(no loss reported yet)"]


def test_checkpoint_scores_align_and_disagree(tmp_path: Path) -> None:
    state = load_run(FIX / "lemlab_events.jsonl")
    points = align_scores(state, [(20, 12.5), (10, 14.0), (30, 11.0)])
    assert [p.iteration for p in points] == [10, 20, 30]
    # Checkpoint 10 = weights after update 10; the validation at 10 saw those after 9 (gap 1).
    assert [(p.val_iteration, p.val_gap) for p in points] == [(10, 1), (20, 1), (30, 1)]
    cmp = compare_checkpoints(_adapter_copy(tmp_path), [(10, 14.0), (20, 12.5), (30, 11.0)])
    assert cmp.best_by_score is not None and cmp.best_by_score.iteration == 10
    assert cmp.best_by_val_loss is not None and cmp.best_by_val_loss.iteration == 30
    assert not cmp.agree and cmp.run_best_val is not None and cmp.run_best_val[0] == 30
    far = align_scores(state, [(15, 1.0)], max_gap=2)
    assert far[0].val_loss is None


def _adapter_copy(d: Path) -> Path:
    (d / "events.jsonl").write_bytes((FIX / "lemlab_events.jsonl").read_bytes())
    for it in (10, 20, 30):
        (d / f"{it:07d}_adapters.safetensors").write_bytes(b"")
    return d
